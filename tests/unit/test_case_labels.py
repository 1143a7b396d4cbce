"""The timeline's words: the fold marks each department by its code, and rendering names it."""

from __future__ import annotations

import pytest

from projections.case_facts import CaseFacts, department_mark, fold, marked_departments, render_label
from tests.unit.case_builders import DEPT, build_with_history

NAMES = {DEPT: "市场监管局"}


def labels(state: str) -> list[str]:
    facts = CaseFacts()
    return [fold(facts, event) for event in build_with_history(state)[1]]


def test_task_lines_say_which_department_signed() -> None:
    stored = labels("all_approved")
    assert [render_label(label, NAMES) for label in stored] == [
        "提交申请",
        "已受理",
        "转市场监管局办理",
        "市场监管局：承办签收",
        "市场监管局：承办通过",
        "市场监管局：审核签收",
        "市场监管局：审核通过",
        "市场监管局：批准签收",
        "市场监管局：批准通过",
    ]
    # What is stored names the department by code only, so the catalogue can rename it.
    assert "市场监管局" not in "".join(stored)
    assert {d for label in stored for d in marked_departments(label)} == {DEPT}


@pytest.mark.parametrize(
    ("state", "last"),
    [("task_rejected", "市场监管局：承办不通过"), ("returned_to_window", "市场监管局：承办退回")],
)
def test_refusals_and_returns_name_the_department(state: str, last: str) -> None:
    assert render_label(labels(state)[-1], NAMES) == last


def test_routing_to_several_departments_lists_them_in_order() -> None:
    label = f"转{department_mark('SCJGJ')}、{department_mark('GAJ')}、{department_mark('XYZ')}办理"
    assert marked_departments(label) == {"SCJGJ", "GAJ", "XYZ"}
    # A code the catalogue does not know still shows, as itself.
    assert render_label(label, {"SCJGJ": "市场监管局", "GAJ": "公安局"}) == "转市场监管局、公安局、XYZ办理"


def test_labels_without_a_department_are_left_alone() -> None:
    for text in ("提交申请", "结果已寄出（EMS {快递}）", "挂起：现场勘查"):
        assert marked_departments(text) == set() and render_label(text, NAMES) == text
