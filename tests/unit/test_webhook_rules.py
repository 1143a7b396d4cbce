"""Webhook rules without a database: the retry schedule, target URLs, sealed secrets, the delivery body."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.bootstrap import build_runtime
from backend.settings import load_settings
from backend.store.personal_cipher import generate_data_key, parse_data_keys
from backend.streams.webhook_rules import JITTER, WebhookUrlError, check_url, retry_delay
from backend.streams.webhook_secrets import SecretBox, SecretUnreadableError
from backend.streams.webhook_worker import WebhookWorker, delivery_body

pytestmark = pytest.mark.unit


def test_the_delay_doubles_from_the_minimum_up_to_the_maximum() -> None:
    schedule = [retry_delay(n, 1.0, 300.0, rng=0.0) for n in range(1, 12)]
    assert schedule == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert retry_delay(0, 1.0, 300.0, rng=0.0) == 0  # no failure, no wait
    assert retry_delay(10_000, 0.05, 0.2, rng=0.0) == 0.2  # no overflow after very many


@given(
    failures=st.integers(1, 200),
    minimum=st.floats(0.01, 10),
    maximum=st.floats(0.01, 1000),
    rng=st.floats(0, 1, exclude_max=True),
)
def test_the_jitter_only_brings_a_retry_slightly_forward(
    failures: int, minimum: float, maximum: float, rng: float
) -> None:
    exact = retry_delay(failures, minimum, maximum, rng=0.0)
    jittered = retry_delay(failures, minimum, maximum, rng=rng)
    assert exact * (1 - JITTER) <= jittered <= exact <= maximum
    assert retry_delay(failures + 1, minimum, maximum, rng=0.0) >= exact  # never shorter after more failures


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.cn/citypass",
        "https://hooks.example.cn:8443/a/b?department=SCJGJ",
        "HTTPS://Hooks.Example.cn/",
        "https://[2001:db8::1]/hook",
    ],
)
def test_https_urls_are_accepted(url: str) -> None:
    assert check_url(url, allow_http=False) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.cn/", "http://"),
        ("ftp://hooks.example.cn/", "https://"),
        ("hooks.example.cn/citypass", "https://"),
        ("javascript:alert(1)", "https://"),
        ("https:///no-host", "no host"),
        ("https://user:pass@hooks.example.cn/", "credentials"),
        ("https://hooks.example.cn/#top", "fragment"),
        ("https://hooks.example.cn:99999/", "port"),
        ("https://hooks.example.cn/a b", "whitespace"),
        ("https://hooks.example.cn/\x00", "control"),
        ("https://hooks.example.cn/" + "a" * 2048, "longer"),
    ],
)
def test_other_urls_are_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(WebhookUrlError, match=why):
        check_url(url, allow_http=False)


def test_plain_http_only_where_allowed() -> None:
    assert check_url("http://127.0.0.1:8080/hook", allow_http=True) == "http://127.0.0.1:8080/hook"
    with pytest.raises(WebhookUrlError):
        check_url("http://127.0.0.1:8080/hook", allow_http=False)


def test_a_sealed_secret_opens_only_for_its_own_subscription_and_survives_a_key_rotation() -> None:
    old = parse_data_keys(generate_data_key("k1"))
    new = parse_data_keys(generate_data_key("k2"))
    box = SecretBox(old)
    mine, other = uuid.uuid4(), uuid.uuid4()
    kid, sealed = box.seal(mine, "s" * 40)
    assert kid == "k1" and b"s" * 40 not in sealed
    assert box.open(mine, kid, sealed) == "s" * 40
    with pytest.raises(SecretUnreadableError):
        box.open(other, kid, sealed)  # copied onto another row, it does not open
    with pytest.raises(SecretUnreadableError):
        box.open(mine, kid, sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(SecretUnreadableError, match="unknown key 'k1'"):
        SecretBox(new).open(mine, kid, sealed)  # a keyring that dropped k1 too soon
    with pytest.raises(SecretUnreadableError):
        SecretBox(parse_data_keys(generate_data_key("k1"))).open(mine, kid, sealed)  # another key named k1
    keep_old = SecretBox([*new, *old])
    assert keep_old.open(mine, kid, sealed) == "s" * 40
    assert keep_old.seal(mine, "t" * 40)[0] == "k2"  # the first key seals


def test_the_body_holds_the_events_byte_for_byte() -> None:
    events = [b'{"id":"a","position":3,"name":"\\u5f20"}', b'{"id":"b","position":9}']
    subscription, delivery = uuid.uuid4(), uuid.uuid4()
    body = delivery_body(subscription, delivery, 9, events)
    assert json.loads(body) == {
        "subscriptionId": str(subscription),
        "deliveryId": str(delivery),
        "cursor": 9,
        "events": [{"id": "a", "position": 3, "name": "张"}, {"id": "b", "position": 9}],
    }
    assert events[0] in body and events[1] in body  # not re-encoded


@pytest.mark.parametrize("with_consumers", [True, False])
def test_the_worker_runs_wherever_consumers_run(with_consumers: bool) -> None:
    env = {"CITYPASS_WEBHOOK_BATCH": "7", "CITYPASS_WEBHOOK_RETRY_MIN_SECONDS": "0.5"}
    runtime = build_runtime(load_settings(env), "postgresql://unused", with_consumers=with_consumers)
    workers = [s for s in runtime.services if isinstance(s, WebhookWorker)]
    assert len(workers) == with_consumers
    if workers:
        rules = workers[0].rules
        assert (rules.batch, rules.backoff.minimum, rules.backoff.maximum) == (7, 0.5, 300.0)
