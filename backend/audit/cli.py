"""`citypass audit …`: replay a case's timeline, verify chains, and verify an export offline.

`replay` and `verify` connect to the configured database and record the access as an
`AuditAccess` by `cli:<os user>`, like the API does for a signed-in auditor.
`verify-export` reads only the file: it needs neither a database nor settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from backend.audit.export_verifier import verify_export_file
from domain.case import Actor, Role

if TYPE_CHECKING:  # the database side is imported when used: verify-export needs none of it
    from backend.audit.service import AuditService
    from backend.settings import Settings

T = TypeVar("T")
ROUTINE = "例行校验 routine chain verification"


# Recorded when an auditor gives no reason, so the record shows that none was given.
UNSTATED = "未说明理由 no reason given"


def add_audit_commands(commands: Any) -> None:
    """The `audit` group, under the `citypass` sub-commands (an argparse _SubParsersAction)."""
    audit = commands.add_parser("audit", help="电子监察: replay and verify case histories")
    actions = audit.add_subparsers(required=True, metavar="ACTION")

    replay = actions.add_parser("replay", help="print a case's timeline (the access is recorded)")
    replay.add_argument("case", help="办件编号 or case id")
    replay.add_argument(
        "--reason",
        default=UNSTATED,
        help=f"why you read it (2 to 200 characters); recorded (default: {UNSTATED})",
    )
    replay.set_defaults(run=_replay)

    verify = actions.add_parser("verify", help="verify the hash chains; exit 1 if anything was altered")
    verify.add_argument("--case", help="one case (办件编号 or case id); the whole store by default")
    verify.add_argument("--reason", default=ROUTINE, help=f"recorded with the access (default: {ROUTINE})")
    verify.set_defaults(run=_verify)

    export = actions.add_parser(
        "verify-export", help="check an export file offline: exit 0 intact, 1 altered, 2 unreadable"
    )
    export.add_argument("file", type=Path, help="a JSON Lines export from GET /api/v1/audit/export")
    export.set_defaults(run=_verify_export, offline=True)


def cli_auditor() -> Actor:
    """Whoever runs the command, by their operating-system account."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment: the numeric uid says who
        user = f"uid-{os.getuid()}"
    return Actor(id=f"cli:{user}", role=Role.AUDITOR, name=user)


@contextlib.asynccontextmanager
async def audit_service(settings: Settings) -> AsyncIterator[AuditService]:
    """The service over a runtime of its own: the store and its writer, no consumers."""
    from backend.audit.service import AuditService
    from backend.calendar_data import base_calendar
    from backend.database import resolve_url
    from backend.runtime import Runtime, start_clock_at, utc_now
    from domain.audit import Via
    from projections.case_reads import CaseQueries

    if settings.dev_clock_start is not None:
        start_clock_at(settings.dev_clock_start, settings.dev_clock_anchor)
    # No consumers here, so no consumer groups to plan either.
    settings = replace(settings, consumers=replace(settings.consumers, groups="together"))
    runtime = Runtime(settings, resolve_url(settings.database, settings.data_dir), with_consumers=False)
    await runtime.start()
    try:
        cases = CaseQueries(lambda: runtime.pool, base_calendar, utc_now)
        yield AuditService(
            lambda: runtime.aggregates, lambda: runtime.pool, cases, clock=utc_now, via=Via.CLI
        )
    finally:
        await runtime.stop()


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from backend.audit.timeline import render_history

    async def run() -> str:
        async with audit_service(settings) as service:
            return render_history(await service.history(cli_auditor(), args.case, reason=args.reason))

    return _answer(run, lambda text: (text, 0))


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from backend.audit.timeline import render_verdict
    from backend.audit.verification import ChainVerdict

    async def run() -> ChainVerdict:
        async with audit_service(settings) as service:
            if args.case is None:
                return await service.verify_store(cli_auditor(), reason=args.reason)
            return await service.verify_case(cli_auditor(), args.case, reason=args.reason)

    return _answer(run, lambda verdict: (render_verdict(verdict), 0 if verdict.ok else 1))


def _verify_export(settings: Settings | None, args: argparse.Namespace) -> int:
    verdict = verify_export_file(args.file)
    print(verdict.describe(), file=sys.stdout if verdict.exit_code == 0 else sys.stderr)
    return verdict.exit_code


def _answer(run: Callable[[], Coroutine[Any, Any, T]], show: Callable[[T], tuple[str, int]]) -> int:
    """Run, print what `show` makes of the result, and exit with its code; a refusal exits 2."""
    from backend.audit.errors import AuditServiceError
    from backend.cases.access import CaseNotFoundError
    from domain.audit import AuditError

    try:
        text, code = show(asyncio.run(run()))
    except (CaseNotFoundError, AuditError, AuditServiceError) as exc:
        print(f"citypass audit: {exc}", file=sys.stderr)
        return 2
    print(text)
    return code
