"""CITYPASS_CONSUMER_GROUPS: which consumers a process runs together, and the plans it refuses."""

from __future__ import annotations

import pytest

from backend.runtime import plan_groups

pytestmark = pytest.mark.unit

NAMES = ["event_counts", "case_progress", "work_queue", "inbox", "notification_policy"]


@pytest.mark.parametrize(
    ("spec", "runners"),
    [
        ("together", [NAMES]),
        ("apart", [[name] for name in NAMES]),
        (
            "case_progress",
            [["case_progress"], ["event_counts", "work_queue", "inbox", "notification_policy"]],
        ),
        (
            "case_progress+work_queue,inbox+notification_policy",
            [["case_progress", "work_queue"], ["inbox", "notification_policy"], ["event_counts"]],
        ),
        (
            "inbox,case_progress,event_counts,work_queue,notification_policy",
            [[n] for n in ["inbox", "case_progress", "event_counts", "work_queue", "notification_policy"]],
        ),
    ],
)
def test_a_plan_places_every_consumer_in_exactly_one_runner(spec: str, runners: list[list[str]]) -> None:
    planned = plan_groups(spec, NAMES)
    assert planned == runners
    assert sorted(name for runner in planned for name in runner) == sorted(NAMES)


def test_no_consumers_means_no_runners() -> None:
    assert plan_groups("together", []) == []
    assert plan_groups("apart", []) == []


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("case_progres", "no such consumer: \\['case_progres'\\]"),
        ("case_progress,case_progress+inbox", "twice: \\['case_progress'\\]"),
    ],
)
def test_a_plan_naming_an_unknown_or_repeated_consumer_is_refused(spec: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        plan_groups(spec, NAMES)
