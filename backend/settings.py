"""Typed settings, read once from the environment (every `CITYPASS_*` variable lives here)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from backend.env_reader import EnvReader
from backend.notify_settings import (
    NotificationSettings,
    NotificationSettingsError,
    load_notification_settings,
)
from backend.store.personal_cipher import KeyringError, dev_data_keys, parse_data_keys
from domain.case import DEFAULT_PATTERN, CaseNumberError, format_case_number


class SettingsError(ValueError):
    """A setting has a value we cannot use."""


_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str | None  # None: start the embedded server under data_dir/pg
    schema: str
    pool_min: int
    pool_max: int


@dataclass(frozen=True, slots=True)
class StoreSettings:
    max_batch: int  # most appends one group commit takes
    snapshot_every: int  # snapshot an aggregate each N events; 0 turns snapshots off


@dataclass(frozen=True, slots=True)
class ConsumerSettings:
    enabled: bool  # run consumers and timers in this process
    batch_size: int
    poll_seconds: float  # fallback when no NOTIFY arrives
    coalesce_seconds: float  # after a NOTIFY, how long a consumer lets appends gather before it reads
    # Which consumers take their batches together: "together" (all), "apart" (each alone), or
    # groups such as "case_progress,inbox+notification_policy" (the rest together in one more).
    groups: str
    timer_poll_seconds: float


@dataclass(frozen=True, slots=True)
class HttpSettings:
    host: str
    port: int
    workers: int
    max_body_bytes: int


@dataclass(frozen=True, slots=True)
class FileSettings:
    directory: Path  # uploaded materials, by sha256
    max_upload_bytes: int


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    data_keys: tuple[tuple[str, bytes], ...] = field(repr=False)  # the first seals; all open


@dataclass(frozen=True, slots=True)
class CaseSettings:
    region: str  # 6-digit 区划代码 of this deployment's city
    number_pattern: str  # how case numbers are written, e.g. {region}{yyyymmdd}{seq:06d}
    rating_window_days: int = 7  # natural days to rate an occasion, then 基本满意 by default
    rectification_days: int = 15  # working days for a 差评工单 (some regions: 5)
    catalogue: Path | None = None  # this city's 事项清单 data file; None: the bundled 长沙 catalogue


@dataclass(frozen=True, slots=True)
class AuthSettings:
    jwt_secret: str
    token_ttl_seconds: int
    dev_login: bool


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Department streams: SSE fan-out and webhook delivery."""

    sse_buffer: int = 2000  # events an SSE subscriber may fall behind before it is dropped
    heartbeat_seconds: float = 15.0  # an SSE comment line when nothing else was sent for this long
    page_limit: int = 1000  # the most events one cursor page or webhook batch may hold
    webhook_batch: int = 100  # events per webhook delivery
    webhook_timeout_seconds: float = 10.0
    webhook_retry_min_seconds: float = 1.0  # the first retry's delay; doubled per failure
    webhook_retry_max_seconds: float = 300.0
    webhook_pause_after: int = 10  # consecutive failures, then the subscription is paused
    webhook_allow_http: bool = True  # plain http:// targets (dev and loopback); prod wants https


@dataclass(frozen=True, slots=True)
class FederationSettings:
    """跨城通办: our signing keys (the first signs; all are published) and the relay's timing."""

    keys: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)  # (key id, Ed25519 seed)
    freshness_seconds: int = 300  # how far a partner's message time may be from ours
    timeout_seconds: float = 10.0  # one delivery to a partner
    retry_min_seconds: float = 1.0  # the first retry's delay; doubled per failure
    retry_max_seconds: float = 300.0


def _catalogue_file(raw: str) -> Path | None:
    if not raw:
        return None
    path = Path(raw).expanduser().resolve()
    if not path.is_file():
        raise SettingsError(f"CITYPASS_CATALOGUE: no file {path}")
    return path


def federation_keys(raw: str, region: str, mode: str) -> tuple[tuple[str, bytes], ...]:
    """CITYPASS_FEDERATION_KEYS ("kid:base64seed,…"); in dev, unset means a key derived from the region."""
    if not raw:
        if mode == "prod":
            raise SettingsError("CITYPASS_FEDERATION_KEYS is required when CITYPASS_ENV=prod")
        # Dev only: every dev deployment of a region signs with the same, publicly derivable key.
        return ((f"dev-{region}", hashlib.sha256(f"citypass-dev-federation/{region}".encode()).digest()),)
    keys = []
    for n, item in enumerate(filter(None, (part.strip() for part in raw.split(","))), 1):
        kid, sep, encoded = item.partition(":")
        try:
            seed = base64.b64decode(encoded, validate=True) if sep else b""
        except ValueError:
            seed = b""
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", kid) or len(seed) != 32:
            raise SettingsError(
                f"CITYPASS_FEDERATION_KEYS entry {n} must be KID:BASE64 of a 32-byte Ed25519 seed"
            )
        keys.append((kid, seed))
    if len({kid for kid, _ in keys}) != len(keys):
        raise SettingsError("CITYPASS_FEDERATION_KEYS names a key id twice")
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Settings:
    env: str  # "dev" or "prod"
    data_dir: Path
    log_level: str
    database: DatabaseSettings
    store: StoreSettings
    consumers: ConsumerSettings
    http: HttpSettings
    files: FileSettings
    privacy: PrivacySettings
    cases: CaseSettings
    notifications: NotificationSettings
    auth: AuthSettings = field(repr=False)
    # Dev only: the server's clock reads this at start and runs on from it (a rehearsal of 08:00).
    dev_clock_start: datetime | None = None
    # When (Unix time) the clock read dev_clock_start: set once by `serve` for all its workers.
    dev_clock_anchor: float | None = None
    streams: StreamSettings = field(default_factory=StreamSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"


_DEV_SECRET = "citypass-dev-secret-not-for-production-use-0000"


_GROUPS = re.compile(r"^[a-z_][a-z0-9_]*(\+[a-z_][a-z0-9_]*)*(,[a-z_][a-z0-9_]*(\+[a-z_][a-z0-9_]*)*)*$")


def consumer_groups(raw: str) -> str:
    """CITYPASS_CONSUMER_GROUPS as written, once its shape is checked (names are checked at start)."""
    spec = raw.replace(" ", "")
    if spec in ("together", "apart") or _GROUPS.match(spec):
        return spec
    raise SettingsError(
        "CITYPASS_CONSUMER_GROUPS must be 'together', 'apart' or groups of consumer names "
        f"such as 'case_progress,inbox+notification_policy', not {raw!r}"
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from the environment; raise SettingsError on a bad value."""
    env = os.environ if environ is None else environ

    read = EnvReader(env, SettingsError)
    text, integer, number, flag = read.text, read.integer, read.number, read.flag

    mode = text("ENV", "dev")
    if mode not in ("dev", "prod"):
        raise SettingsError(f"CITYPASS_ENV must be 'dev' or 'prod', not {mode!r}")
    schema = text("DB_SCHEMA", "citypass")
    if not _SCHEMA_NAME.match(schema):
        raise SettingsError(f"CITYPASS_DB_SCHEMA must be a lower-case SQL identifier, not {schema!r}")
    secret = env.get("CITYPASS_JWT_SECRET", "")
    if not secret:
        if mode == "prod":
            raise SettingsError("CITYPASS_JWT_SECRET is required when CITYPASS_ENV=prod")
        secret = _DEV_SECRET
    elif len(secret) < 32:
        raise SettingsError("CITYPASS_JWT_SECRET must be at least 32 characters")
    dev_login = flag("DEV_LOGIN", mode == "dev")
    if dev_login and mode != "dev":
        raise SettingsError("CITYPASS_DEV_LOGIN=1 is only allowed with CITYPASS_ENV=dev")

    raw_keys = env.get("CITYPASS_DATA_KEYS", "").strip()
    if raw_keys:
        try:
            keys = parse_data_keys(raw_keys)
        except KeyringError as exc:
            raise SettingsError(f"CITYPASS_DATA_KEYS: {exc}") from None
        if mode == "prod" and any(key == dev_data_keys()[0][1] for _, key in keys):
            raise SettingsError("CITYPASS_DATA_KEYS must not contain the development key in prod")
    elif mode == "prod":
        raise SettingsError("CITYPASS_DATA_KEYS is required when CITYPASS_ENV=prod")
    else:
        keys = dev_data_keys()
    region = text("REGION", "430100")
    if not re.fullmatch(r"\d{6}", region):
        raise SettingsError(f"CITYPASS_REGION must be a 6-digit 区划代码, not {region!r}")
    pattern = text("CASE_NUMBER_PATTERN", DEFAULT_PATTERN)
    try:
        format_case_number(region, date(2026, 1, 1), 1, pattern)
    except CaseNumberError as exc:
        raise SettingsError(f"CITYPASS_CASE_NUMBER_PATTERN: {exc}") from None
    data_dir = Path(text("DATA_DIR", "var")).expanduser().resolve()
    clock_start = _clock_start(env.get("CITYPASS_DEV_CLOCK_START", "").strip(), mode)
    try:
        notifications = load_notification_settings(env)
    except NotificationSettingsError as exc:
        raise SettingsError(str(exc)) from None
    return Settings(
        env=mode,
        data_dir=data_dir,
        log_level=text("LOG_LEVEL", "INFO").upper(),
        database=DatabaseSettings(
            url=env.get("CITYPASS_DATABASE_URL") or None,
            schema=schema,
            pool_min=integer("DB_POOL_MIN", 2, 1, 100),
            pool_max=integer("DB_POOL_MAX", 10, 1, 500),
        ),
        store=StoreSettings(
            max_batch=integer("STORE_MAX_BATCH", 500, 1, 10_000),
            snapshot_every=integer("SNAPSHOT_EVERY", 100, 0, 1_000_000),
        ),
        consumers=ConsumerSettings(
            enabled=flag("CONSUMERS", True),
            batch_size=integer("CONSUMER_BATCH", 500, 1, 10_000),
            poll_seconds=number("CONSUMER_POLL_SECONDS", 1.0, 0.01, 3600),
            coalesce_seconds=number("CONSUMER_COALESCE_MS", 10.0, 0.0, 1000.0) / 1000,
            groups=consumer_groups(text("CONSUMER_GROUPS", "case_progress,event_stream")),
            timer_poll_seconds=number("TIMER_POLL_SECONDS", 1.0, 0.01, 3600),
        ),
        http=HttpSettings(
            host=text("HOST", "127.0.0.1"),
            port=integer("PORT", 8000, 0, 65535),
            workers=integer("WORKERS", 1, 1, 64),
            max_body_bytes=integer("MAX_BODY_BYTES", 1_048_576, 1024, 1 << 30),
        ),
        files=FileSettings(
            directory=Path(text("FILES_DIR", str(data_dir / "files"))).expanduser().resolve(),
            max_upload_bytes=integer("MAX_UPLOAD_BYTES", 10 * 1_048_576, 1024, 1 << 30),
        ),
        privacy=PrivacySettings(data_keys=tuple(keys)),
        cases=CaseSettings(
            region=region,
            number_pattern=pattern,
            rating_window_days=integer("RATING_WINDOW_DAYS", 7, 1, 90),
            rectification_days=integer("RECTIFICATION_DAYS", 15, 1, 60),
            catalogue=_catalogue_file(env.get("CITYPASS_CATALOGUE", "").strip()),
        ),
        notifications=notifications,
        auth=AuthSettings(
            jwt_secret=secret,
            token_ttl_seconds=integer("TOKEN_TTL_SECONDS", 3600, 60, 30 * 86400),
            dev_login=dev_login,
        ),
        dev_clock_start=clock_start,
        dev_clock_anchor=_clock_anchor(env.get("CITYPASS_DEV_CLOCK_ANCHOR", "")),
        streams=StreamSettings(
            sse_buffer=integer("SSE_BUFFER", 2000, 10, 1_000_000),
            heartbeat_seconds=number("SSE_HEARTBEAT_SECONDS", 15.0, 0.05, 3600),
            page_limit=integer("STREAM_PAGE_LIMIT", 1000, 1, 10_000),
            webhook_batch=integer("WEBHOOK_BATCH", 100, 1, 10_000),
            webhook_timeout_seconds=number("WEBHOOK_TIMEOUT_SECONDS", 10.0, 0.1, 300),
            webhook_retry_min_seconds=number("WEBHOOK_RETRY_MIN_SECONDS", 1.0, 0.01, 3600),
            webhook_retry_max_seconds=number("WEBHOOK_RETRY_MAX_SECONDS", 300.0, 0.01, 86400),
            webhook_pause_after=integer("WEBHOOK_PAUSE_AFTER", 10, 1, 1000),
            webhook_allow_http=flag("WEBHOOK_ALLOW_HTTP", mode == "dev"),
        ),
        federation=FederationSettings(
            keys=federation_keys(env.get("CITYPASS_FEDERATION_KEYS", "").strip(), region, mode),
            freshness_seconds=integer("FEDERATION_FRESHNESS_SECONDS", 300, 5, 3600),
            timeout_seconds=number("FEDERATION_TIMEOUT_SECONDS", 10.0, 0.1, 300),
            retry_min_seconds=number("FEDERATION_RETRY_MIN_SECONDS", 1.0, 0.01, 3600),
            retry_max_seconds=number("FEDERATION_RETRY_MAX_SECONDS", 300.0, 0.01, 86400),
        ),
    )


def _clock_anchor(raw: str) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        raise SettingsError(f"CITYPASS_DEV_CLOCK_ANCHOR must be a Unix time, not {raw!r}") from None


def _clock_start(raw: str, mode: str) -> datetime | None:
    if not raw:
        return None
    if mode != "dev":
        raise SettingsError("CITYPASS_DEV_CLOCK_START is only allowed with CITYPASS_ENV=dev")
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"CITYPASS_DEV_CLOCK_START must be an ISO time, not {raw!r}") from None
    if at.tzinfo is None:
        raise SettingsError("CITYPASS_DEV_CLOCK_START needs a UTC offset, such as 2026-12-07T07:59:40+08:00")
    return at
