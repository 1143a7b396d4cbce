"""Settings come from the environment once, and bad values are refused with the variable named."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from backend.settings import SettingsError, load_settings
from backend.store.personal_cipher import dev_data_keys

pytestmark = pytest.mark.unit

DEV_KEY_B64 = base64.b64encode(dev_data_keys()[0][1]).decode()
OLD_KEY_B64 = base64.b64encode(bytes(range(32))).decode()
NEW_KEY_B64 = base64.b64encode(bytes(range(32, 64))).decode()


def test_defaults_are_a_working_development_setup() -> None:
    s = load_settings({})
    assert s.env == "dev" and s.is_dev
    assert s.database.url is None and s.database.schema == "citypass"
    assert (s.http.host, s.http.port, s.http.workers) == ("127.0.0.1", 8000, 1)
    assert s.auth.dev_login is True
    assert s.consumers.enabled is True
    assert s.consumers.groups == "case_progress,event_stream"  # each alone, the other consumers together
    assert s.data_dir.name == "var"
    assert s.files.directory == s.data_dir / "files" and s.files.max_upload_bytes == 10 * 1_048_576
    assert (s.cases.region, s.cases.number_pattern) == ("430100", "{region}{yyyymmdd}{seq:06d}")


def test_values_are_read_and_typed() -> None:
    s = load_settings(
        {
            "CITYPASS_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
            "CITYPASS_DB_SCHEMA": "city_430100",
            "CITYPASS_PORT": "9000",
            "CITYPASS_CONSUMER_POLL_SECONDS": "0.25",
            "CITYPASS_CONSUMERS": "0",
            "CITYPASS_CONSUMER_GROUPS": "case_progress + work_queue, inbox",
            "CITYPASS_STORE_MAX_BATCH": "64",
            "CITYPASS_REGION": "430200",
            "CITYPASS_CASE_NUMBER_PATTERN": "{region}-{yyyy}{mm}{dd}-{seq:05d}",
        }
    )
    assert s.database.url == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert s.database.schema == "city_430100"
    assert s.http.port == 9000
    assert s.consumers.poll_seconds == 0.25
    assert s.consumers.enabled is False
    assert s.consumers.groups == "case_progress+work_queue,inbox"
    assert s.store.max_batch == 64
    assert (s.cases.region, s.cases.number_pattern) == ("430200", "{region}-{yyyy}{mm}{dd}-{seq:05d}")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CITYPASS_PORT": "eighty"}, "CITYPASS_PORT"),
        ({"CITYPASS_PORT": "70000"}, "CITYPASS_PORT"),
        ({"CITYPASS_ENV": "staging"}, "CITYPASS_ENV"),
        ({"CITYPASS_DB_SCHEMA": "Robert'); DROP"}, "CITYPASS_DB_SCHEMA"),
        ({"CITYPASS_ENV": "prod", "CITYPASS_DATA_KEYS": f"k1:{OLD_KEY_B64}"}, "CITYPASS_JWT_SECRET"),
        ({"CITYPASS_JWT_SECRET": "short"}, "CITYPASS_JWT_SECRET"),
        ({"CITYPASS_CONSUMERS": "maybe"}, "CITYPASS_CONSUMERS"),
        ({"CITYPASS_CONSUMER_GROUPS": "case_progress++inbox"}, "CITYPASS_CONSUMER_GROUPS"),
        ({"CITYPASS_CONSUMER_GROUPS": "Case-Progress"}, "CITYPASS_CONSUMER_GROUPS"),
        ({"CITYPASS_REGION": "4301"}, "CITYPASS_REGION"),
        ({"CITYPASS_CASE_NUMBER_PATTERN": "{yyyymmdd}{seq:06d}"}, "CITYPASS_CASE_NUMBER_PATTERN"),
        (
            {"CITYPASS_ENV": "prod", "CITYPASS_JWT_SECRET": "x" * 40, "CITYPASS_DEV_LOGIN": "1"},
            "CITYPASS_DEV_LOGIN",
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


FEDERATION_KEY = f"zz1:{base64.b64encode(bytes(range(32))).decode()}"


def test_production_needs_its_own_data_keys() -> None:
    base = {
        "CITYPASS_ENV": "prod",
        "CITYPASS_JWT_SECRET": "s" * 48,
        "CITYPASS_FEDERATION_KEYS": FEDERATION_KEY,
    }
    with pytest.raises(SettingsError, match="CITYPASS_DATA_KEYS"):
        load_settings(base)
    with pytest.raises(SettingsError, match="development key"):
        load_settings({**base, "CITYPASS_DATA_KEYS": f"dev:{DEV_KEY_B64}"})
    with pytest.raises(SettingsError, match="CITYPASS_DATA_KEYS"):
        load_settings({**base, "CITYPASS_DATA_KEYS": "k1:not-base64!"})
    s = load_settings({**base, "CITYPASS_DATA_KEYS": f"k2:{NEW_KEY_B64},k1:{OLD_KEY_B64}"})
    assert [kid for kid, _ in s.privacy.data_keys] == ["k2", "k1"]  # the first seals


def test_production_turns_dev_login_off() -> None:
    s = load_settings(
        {
            "CITYPASS_ENV": "prod",
            "CITYPASS_JWT_SECRET": "s" * 48,
            "CITYPASS_DATA_KEYS": f"k1:{OLD_KEY_B64}",
            "CITYPASS_FEDERATION_KEYS": FEDERATION_KEY,
        }
    )
    assert s.auth.dev_login is False and not s.is_dev


def test_federation_keys_sign_with_the_first_and_production_names_its_own() -> None:
    dev = load_settings({"CITYPASS_REGION": "430200"}).federation.keys
    assert [kid for kid, _ in dev] == ["dev-430200"]  # derived from the region, for dev deployments only
    two = f"{FEDERATION_KEY},zz0:{base64.b64encode(bytes(32)).decode()}"
    assert [kid for kid, _ in load_settings({"CITYPASS_FEDERATION_KEYS": two}).federation.keys] == [
        "zz1",
        "zz0",
    ]
    prod = {
        "CITYPASS_ENV": "prod",
        "CITYPASS_JWT_SECRET": "s" * 48,
        "CITYPASS_DATA_KEYS": f"k1:{OLD_KEY_B64}",
    }
    for bad in (
        {},
        {"CITYPASS_FEDERATION_KEYS": "zz1:c2hvcnQ="},
        {"CITYPASS_FEDERATION_KEYS": f"{FEDERATION_KEY},{FEDERATION_KEY}"},
    ):
        with pytest.raises(SettingsError, match="CITYPASS_FEDERATION_KEYS"):
            load_settings({**prod, **bad})


def test_the_rating_window_and_the_rectification_deadline_are_regional_settings() -> None:
    default = load_settings({}).cases
    assert (default.rating_window_days, default.rectification_days) == (7, 15)
    regional = load_settings({"CITYPASS_RATING_WINDOW_DAYS": "10", "CITYPASS_RECTIFICATION_DAYS": "5"}).cases
    assert (regional.rating_window_days, regional.rectification_days) == (10, 5)
    for name in ("CITYPASS_RATING_WINDOW_DAYS", "CITYPASS_RECTIFICATION_DAYS"):
        with pytest.raises(SettingsError, match=name):
            load_settings({name: "0"})


def test_the_dev_clock_is_for_development_only() -> None:
    start = "2026-12-07T07:59:30+08:00"
    assert load_settings({"CITYPASS_DEV_CLOCK_START": start}).dev_clock_start is not None
    for env in (
        {"CITYPASS_DEV_CLOCK_START": "2026-12-07T07:59:30"},  # no offset
        {"CITYPASS_DEV_CLOCK_START": "tomorrow"},
        {
            "CITYPASS_ENV": "prod",
            "CITYPASS_JWT_SECRET": "x" * 40,
            "CITYPASS_DATA_KEYS": f"k2:{NEW_KEY_B64}",
            "CITYPASS_DEV_CLOCK_START": start,
        },
    ):
        with pytest.raises(SettingsError, match="CITYPASS_DEV_CLOCK_START"):
            load_settings(env)


def test_a_city_loads_its_own_catalogue_file(tmp_path: Path) -> None:
    assert load_settings({}).cases.catalogue is None  # the bundled 长沙 catalogue
    own = tmp_path / "zhuzhou_430200.json"
    own.write_text("{}")
    assert load_settings({"CITYPASS_CATALOGUE": str(own)}).cases.catalogue == own.resolve()
    with pytest.raises(SettingsError, match="CITYPASS_CATALOGUE: no file"):
        load_settings({"CITYPASS_CATALOGUE": str(tmp_path / "missing.json")})
