"""Demo data for `citypass serve --demo`: people, and cases in every state, told through the real services.

The people and their stories are in demo_cases.py; this module runs them. Each
case is told on a working day of the recent past by a clock of the seeding's own,
so timelines, deadlines and lights look lived in. Seeding is idempotent: a case is
found again by its client request id, and every later command carries a request id
that the case remembers, so a second run appends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID

from backend.bootstrap import build_booking_service, build_case_service, build_runtime, query_passwords
from backend.calendars import CalendarService
from backend.cases.access import Caller
from backend.cases.deadline_facts import end_of
from backend.cases.deadline_handlers import deadline_handlers
from backend.cases.deadlines import (
    DEEM_ACCEPTED,
    INSTANT_APPROVAL,
    PRE_REVIEW_LIMIT,
    SUPPLEMENT_OVERDUE,
    deem_key,
    instant_key,
    supplement_key,
)
from backend.cases.service import CaseService
from backend.catalogue import CatalogueSource, load_catalogue, read_catalogue
from backend.consumers.batch import process_batch
from backend.consumers.generations import active_generation
from backend.demo_cases import CITIZENS, CLERKS, HALLS, OFFICERS, STORIES, Citizen
from backend.demo_halls import DEMO_HALLS
from backend.materials import MaterialStore
from backend.runtime import Runtime, utc_now
from backend.settings import Settings
from backend.timers import TimerHandler
from domain.calendar import WorkingCalendar
from domain.calendar_deadline import deadline
from domain.case import Actor, Applicant, Case, CaseStatus, JsonValue, UploadedFile
from domain.case import Role as ActorRole
from domain.case.checks import BEIJING
from domain.case.tasks import STEPS
from domain.catalogue import BundleSpec, ServiceItemSpec
from projections.catalogue import CatalogueProjection, CatalogueQueries

log = logging.getLogger(__name__)

STEP = timedelta(minutes=5)  # between two commands of one case
_OPINIONS = {"undertake": "材料齐全，符合法定形式，拟同意", "review": "经审核，符合条件", "approve": "同意"}


class DemoClock:
    """When each seeded command happens: on its case's working day, one step every few minutes."""

    def __init__(self, now: datetime, calendar: WorkingCalendar) -> None:
        self.now, self.calendar, self.at = now, calendar, now

    def __call__(self) -> datetime:
        return self.at

    def day(self, back: int) -> None:
        """09:00 on the working day `back` days before today; today's stories start two hours ago."""
        if back == 0:
            self.at = self.now - 24 * STEP
            return
        today = self.now.astimezone(BEIJING).date()
        self.at = datetime.combine(self.calendar.add_working_days(today, -back), time(9), tzinfo=BEIJING)

    def tick(self) -> None:
        self.at = min(self.at + STEP, self.now)  # never in the future, whatever a story does


@dataclass
class DemoCase:
    seeder: Seeder
    key: str
    id: UUID
    subject: str  # the account that submitted it: log in as this subject to see it
    story: str

    async def act(self, command: Callable[..., Awaitable[Any]], caller: Caller, step: str, **how: Any) -> Any:
        """One command at the next tick, under a request id the case remembers, so a rerun changes nothing."""
        self.seeder.clock.tick()
        request = f"demo-{step}"
        if await self._remembers(request):
            return None  # the case would ignore it anyway, so a rerun skips the command
        return await command(caller, self.id, request_id=request, **how)

    async def sign(self, officer: Caller, steps: int, *, then_claim: bool = False) -> None:
        """The officer's department signs the first `steps` of 承办 → 审核 → 批准, and may claim the next."""
        service, department = self.seeder.service, officer.department
        for step in STEPS[:steps]:
            await self.act(service.claim_task, officer, f"claim-{department}-{step}", department=department)
            await self.act(
                service.approve_task_step,
                officer,
                f"sign-{department}-{step}",
                department=department,
                opinion=_OPINIONS[step],
            )
        if then_claim:
            step = STEPS[steps]
            await self.act(service.claim_task, officer, f"claim-{department}-{step}", department=department)

    async def let_pre_review_lapse(self) -> None:
        """Nobody pre-reviews within 5 days: the case is deemed accepted (行政许可法 Art. 32)."""
        day = (await self._case()).complete_at.astimezone(BEIJING).date()
        last = deadline(day, PRE_REVIEW_LIMIT, self.seeder.clock.calendar, today=day).due
        await self._fire(DEEM_ACCEPTED, deem_key(self.id), end_of(last))

    async def let_supplement_lapse(self) -> None:
        """The 容缺 materials never come: concluded 补正超时驳回 once their due date has passed."""
        terms = (await self._case()).acceptance
        assert terms is not None and terms.supplement_due is not None, "accept with missing materials first"
        await self._fire(SUPPLEMENT_OVERDUE, supplement_key(self.id), end_of(terms.supplement_due))

    async def approve_instantly(self) -> None:
        """秒批: the rule's timer is due at submission; fire it now, as the server's timer worker would."""
        item = (await self._case()).item_code
        await self._fire(INSTANT_APPROVAL, instant_key(self.id), self.seeder.clock.at, item_code=item)

    async def _fire(self, kind: str, key: str, at: datetime, **payload: str) -> None:
        # The timer's own key and handler: when the server's timer worker fires it too, the case ignores it.
        clock = self.seeder.clock
        if at > clock.now:
            log.info("demo case %s: %s is due only at %s; the timers will do it", self.key, kind, at)
            return
        if not await self._remembers(key):
            clock.at = at
            await self.seeder.timers[kind](key, {"case_id": str(self.id), **payload})

    async def _remembers(self, request: str) -> bool:
        return request in (await self._case()).processed_requests

    async def _case(self) -> Case:
        case: Case = await self.seeder.service.aggregates.get(self.id)
        return case


class Seeder:
    """What a story needs: the case service, the demo clock, material files and the deadline timers."""

    def __init__(
        self,
        service: CaseService,
        clock: DemoClock,
        files: MaterialStore,
        timers: Mapping[str, TimerHandler],
        catalogue: CatalogueSource,
    ) -> None:
        self.service, self.clock, self.files, self.timers = service, clock, files, timers
        entries: tuple[ServiceItemSpec | BundleSpec, ...] = (*catalogue.items, *catalogue.bundles)
        self.codes = {e.name: e.code for e in entries}
        self.materials = {e.code: tuple(m.id for m in e.materials) for e in entries}
        self.cases: list[DemoCase] = []

    async def submit(
        self,
        key: str,
        by: Citizen,
        item: str,
        *,
        story: str,
        on_behalf_of: Applicant | None = None,
        missing: Iterable[str] = (),
        form: Mapping[str, JsonValue] | None = None,
        back: int = 0,
    ) -> DemoCase:
        """申请 of the catalogue's `item` (by name) through the mini-program, `back` working days ago.

        Every material of the item but the `missing` is uploaded. On behalf of an
        enterprise, the citizen is its 经办人.
        """
        code = self.codes[item]
        self.clock.day(back)
        left_out = set(missing)
        materials = {
            m: UploadedFile(self.upload(f"{key} {m}")) for m in self.materials[code] if m not in left_out
        }
        done = await self.service.submit(
            by.caller,
            item_code=code,
            client_request_id=f"demo-{key}",
            applicant=on_behalf_of or by.applicant,
            agent=by.agent if on_behalf_of is not None else None,
            form=form,
            materials=materials,
        )
        case = DemoCase(self, key, done.case_id, by.subject, story)
        self.cases.append(case)
        return case

    def upload(self, label: str) -> str:
        """A small PDF standing for one material; the same label is the same file, stored once."""
        return self.files.put(_pdf(f"citypass demo material: {label}"), "application/pdf").sha256


# The demo's set-up is the system's act; the halls' own managers (manager-smzj …) change it later.
HALL_SETUP = Actor(id="system:demo", role=ActorRole.SYSTEM, name="演示数据")


async def seed(settings: Settings, url: str, *, now: datetime | None = None) -> list[DemoCase]:
    """Seed the demo cases (a rerun appends nothing), then log who to log in as."""
    calendars = CalendarService(lambda: runtime.aggregates, settings.cases.region)
    runtime = build_runtime(settings, url, with_consumers=False, calendars=calendars)
    await runtime.start()
    try:
        await load_catalogue(runtime.aggregates)
        await _catch_up(runtime, CatalogueProjection.name)  # the case service reads items from it
        clock = DemoClock(now or utc_now(), await calendars.current())
        files = MaterialStore(settings.files.directory, max_bytes=settings.files.max_upload_bytes)
        service = build_case_service(settings, runtime, files, calendars, clock)
        passwords, views = query_passwords(settings), CatalogueQueries(runtime.pool)
        timers = deadline_handlers(runtime.aggregates, clock, calendars.current, passwords, views)
        catalogue = read_catalogue()
        seeder = Seeder(service, clock, files, timers, catalogue)
        head = await runtime.recorder.max_notification_id() or 0
        for story in STORIES:
            await story(seeder)
        bookings = build_booking_service(settings, lambda: runtime.aggregates, calendars, clock)
        for code, config in DEMO_HALLS.items():  # unchanged on a rerun: nothing appended
            await bookings.configure_hall(HALL_SETUP, code, config)
        appended = (await runtime.recorder.max_notification_id() or 0) - head
        cases = [await service.aggregates.get(c.id) for c in seeder.cases]
        log.info("%s", _summary(settings, catalogue, seeder.cases, cases, appended))
        return seeder.cases
    finally:
        await runtime.stop()


async def _catch_up(runtime: Runtime, name: str) -> None:
    """Bring one read model up to the head of the log in this process, as its consumer would."""
    consumer = runtime.consumers[name]
    async with runtime.pool.acquire() as conn:
        generation = await active_generation(conn, name)
        while True:
            async with conn.transaction():
                done = await process_batch(conn, consumer, runtime.mapper.to_domain_event, generation, 500)
            if done.caught_up:
                return


def _summary(
    settings: Settings, catalogue: CatalogueSource, seeded: list[DemoCase], cases: list[Case], appended: int
) -> str:
    entries: tuple[ServiceItemSpec | BundleSpec, ...] = (*catalogue.items, *catalogue.bundles)
    names = {e.code: e.name for e in entries}
    departments = {i.department.code: i.department.name for i in catalogue.items}
    base = f"http://{settings.http.host}:{settings.http.port}"
    mine = {c.subject: sum(s.subject == c.subject for s in seeded) for c in CITIZENS}
    lines = [
        f"demo data: {len(seeded)} cases of {len(CITIZENS)} citizens ({appended} events appended now).",
        "Log in as any of these with POST /api/v1/auth/dev-login (the body names the identity):",
        *(f"  citizen  {c.subject:<22} {mine[c.subject]} cases" for c in CITIZENS),
        *(f"  clerk    {c.subject:<22} hall {c.hall} {HALLS[c.hall or '']}" for c in CLERKS),
        *(f"  manager  manager-{code.lower():<14} hall {code} (bookings and queue)" for code in DEMO_HALLS),
        *(
            f"  officer  {o.subject:<22} department {o.department} {departments[o.department or '']}"
            for o in OFFICERS
        ),
        f"  curl -s -X POST {base}/api/v1/auth/dev-login -H 'content-type: application/json' \\",
        '       -d \'{"subject":"citizen-zhangsan","role":"citizen"}\'',
        '  and send "Authorization: Bearer <token>"; a clerk adds "hall", an officer "department".',
        "The cases:",
    ]
    for s, case in zip(seeded, cases, strict=True):
        status = case.status.label
        if case.conclusion is not None and case.status in (CaseStatus.CONCLUDED, CaseStatus.DELIVERED):
            status += f" {case.conclusion.result.label}"
        lines.append(f"  {case.number} {status:<10} {s.subject:<18} {names[case.item_code]}: {s.story}")
    return "\n".join(lines)


def _pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (ASCII), so a downloaded demo material opens in any viewer."""
    content = b"BT /F1 14 Tf 72 760 Td (" + text.encode("ascii") + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
