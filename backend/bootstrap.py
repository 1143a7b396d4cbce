"""The composition root: the only place that picks concrete consumers, handlers and the app."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

import asyncpg
from litestar import Litestar, Router

from backend.audit.errors import register_audit_service_problems
from backend.audit.service import AuditService
from backend.booking.service import (
    AppointmentNotFoundError,
    BookingService,
    NotHallManagerError,
    PersonKeys,
)
from backend.booking.timers import BookingTimers, booking_handlers
from backend.calendars import CalendarService
from backend.cases.deadline_handlers import deadline_handlers
from backend.cases.deadlines import CaseDeadlines, catalogue_times
from backend.cases.problems import register_case_service_problems
from backend.cases.service import CaseService
from backend.catalogue import DEFAULT_CATALOGUE, load_catalogue
from backend.complaints.service import ComplaintNotFoundError, ComplaintService
from backend.complaints.timers import ComplaintTimers, complaint_handlers
from backend.federation.admin import register_federation_admin_problems
from backend.federation.build import (
    build_admin,
    build_applier,
    build_handoff_files,
    build_inbox,
    build_relay,
    federation_handlers,
)
from backend.federation.partners import PartnerService
from backend.federation.published import published_keys
from backend.federation.receiving import TongbanHandoffs
from backend.federation.refusals import register_federation_problems
from backend.federation.reports import TongbanReports
from backend.hall_queue.errors import register_queue_service_problems
from backend.hall_queue.no_shows import QueueNoShows, queue_no_show_handlers
from backend.hall_queue.service import HallQueueService
from backend.materials import (
    MaterialCorruptedError,
    MaterialNotFoundError,
    MaterialStore,
    MaterialTooLargeError,
    MaterialTypeError,
)
from backend.notify import build_dispatcher
from backend.rating.service import RatingNotFoundError, RatingRules, RatingService, TicketNotFoundError
from backend.rating.timers import RatingTimers, rating_handlers
from backend.runtime import Runtime, Service, start_clock_at, utc_now
from backend.settings import Settings
from backend.store.aggregates import AggregateStore
from backend.streams.hub import StreamHub
from backend.streams.webhook_rules import register_webhook_problems
from backend.streams.webhooks import build_webhook_subscriptions, build_webhook_worker
from domain.audit import Via
from miniapp_api.admin_calendar import admin_calendar_router
from miniapp_api.admin_notifications import admin_notifications_router
from miniapp_api.app import create_app
from miniapp_api.audit_routes import audit_router, register_audit_problems
from miniapp_api.booking_routes import booking_router, register_booking_problems
from miniapp_api.case_commands import case_command_handlers, register_case_problems
from miniapp_api.case_queries import case_query_handlers
from miniapp_api.complaint_routes import complaint_router, register_complaint_problems
from miniapp_api.config import ApiConfig
from miniapp_api.federation_routes import (
    admin_federation_router,
    federation_files_router,
    federation_messages_router,
)
from miniapp_api.materials import materials_router
from miniapp_api.notification_routes import my_notifications_router
from miniapp_api.partner_routes import federation_keys_router, partner_router, register_partner_problems
from miniapp_api.problems import ProblemMap
from miniapp_api.queue_routes import queue_router, register_queue_problems
from miniapp_api.rating_routes import rating_router, register_rating_problems
from miniapp_api.services import catalogue_router
from miniapp_api.stream_routes import register_stream_problems, stream_router
from miniapp_api.tongban_routes import tongban_router
from miniapp_api.webhook_routes import webhook_router
from notifications.admin import NotificationNotDeadError, NotificationNotFoundError, OutboxAdmin
from notifications.appointment_notices import AppointmentNotices
from notifications.case_notices import catalogue_items
from notifications.contacts import (
    Contacts,
    DeviceNotFoundError,
    InvalidPreferenceError,
    UnknownTemplateError,
)
from notifications.inbox import Inbox, InboxQueries
from notifications.outbox import NotificationPolicy
from notifications.rating_notices import RatingNotices
from projections.appointments import AppointmentProjection, AppointmentQueries
from projections.case_progress import CaseProgressProjection, CaseQueries
from projections.case_secrets import QueryPasswords
from projections.catalogue import CatalogueProjection, CatalogueQueries, department_names
from projections.complaint_reads import ComplaintQueries
from projections.complaints import ComplaintProjection
from projections.event_counts import EventCounts
from projections.event_stream import EventStreamProjection
from projections.event_stream_reads import StreamQueries
from projections.hall_queue import HallQueueProjection
from projections.hall_queue_reads import HallQueueQueries
from projections.partners import PartnerProjection, PartnerQueries
from projections.rating_reads import RatingQueries
from projections.ratings import RatingProjection
from projections.tongban_board import TongbanBoardProjection
from projections.tongban_board_reads import TongbanBoardQueries
from projections.work_queue import WorkQueueProjection, WorkQueueQueries

log = logging.getLogger(__name__)


def build_runtime(
    settings: Settings,
    url: str,
    *,
    with_consumers: bool,
    calendars: CalendarService | None = None,
    dispatcher: bool | None = None,
) -> Runtime:
    """The runtime with every consumer and timer; `calendars` is shared with the app when given.

    The notification dispatcher runs where `dispatcher` says; by default beside the
    consumers, unless CITYPASS_NOTIFY_DISPATCHER=0 leaves it to `citypass dispatcher`.
    """
    if settings.dev_clock_start is not None:
        start_clock_at(settings.dev_clock_start, settings.dev_clock_anchor)
    if dispatcher is None:
        dispatcher = with_consumers and settings.notifications.dispatch_with_consumers
    if calendars is None:
        calendars = CalendarService(lambda: runtime.aggregates, settings.cases.region)
    catalogue = CatalogueQueries(lambda: runtime.pool)
    items = catalogue_items(catalogue, PartnerQueries(lambda: runtime.pool))  # partner items by name
    services: list[Service] = []
    if dispatcher:
        services.append(
            build_dispatcher(
                settings.notifications,
                lambda: runtime.pool,
                lambda stored: runtime.mapper.to_domain_event(stored),
                settings.privacy.data_keys[0][1],
            )
        )
    if with_consumers:  # every such process may run one: leases keep them apart
        services.append(
            build_webhook_worker(
                settings,
                url,
                lambda: runtime.pool,
                lambda stored: runtime.mapper.to_domain_event(stored),
                utc_now,
            )
        )
        # 通办 messaging: the outbox's relay and the inbox's applier; leases and locks keep processes apart.
        partners = PartnerQueries(lambda: runtime.pool)
        services.append(build_relay(settings, url, lambda: runtime.pool, partners, utc_now))
        handlers = federation_handlers(
            settings, lambda: runtime.pool, lambda: runtime.aggregates, utc_now, material_store(settings)
        )
        services.append(build_applier(settings, url, lambda: runtime.pool, handlers, utc_now))
    bookings = build_booking_service(settings, lambda: runtime.aggregates, calendars, utc_now)
    ratings = build_rating_service(settings, lambda: runtime.aggregates, calendars, catalogue)
    complaints = build_complaint_service(
        settings, lambda: runtime.aggregates, lambda: runtime.pool, calendars
    )

    async def names(codes: Sequence[str]) -> dict[str, str]:
        """Department names for the citizens' notices: 长沙市医疗保障局, not YBJ."""
        return await department_names(runtime.pool, codes)

    runtime = Runtime(
        settings,
        url,
        consumers=[
            EventCounts(),
            CatalogueProjection(),
            CaseProgressProjection(),
            WorkQueueProjection(),
            CaseDeadlines(calendars.current, catalogue_times(catalogue)),
            NotificationPolicy(items, utc_now, calendar=calendars.recent),
            Inbox(items, calendars.recent, department_names=names),
            AppointmentProjection(),
            BookingTimers(),
            HallQueueProjection(),
            QueueNoShows(),
            AppointmentNotices(items, utc_now),
            RatingTimers(rating_rules(settings)),
            RatingProjection(),
            RatingNotices(items, names, utc_now),
            ComplaintProjection(),
            ComplaintTimers(complaints.confirm_days),
            EventStreamProjection(),
            PartnerProjection(),
            TongbanBoardProjection(),
            TongbanHandoffs(lambda: runtime.aggregates),
            TongbanReports(names),  # 办理地: each step of a partner city's case reported back to it
        ],
        timer_handlers={
            **deadline_handlers(
                lambda: runtime.aggregates, utc_now, calendars.current, query_passwords(settings), catalogue
            ),
            **booking_handlers(bookings),
            **queue_no_show_handlers(bookings),
            **rating_handlers(ratings),
            **complaint_handlers(complaints),
        },
        with_consumers=with_consumers,
        services=services,
    )
    return runtime


def build_case_service(
    settings: Settings,
    runtime: Runtime,
    materials: MaterialStore,
    calendars: CalendarService,
    clock: Callable[[], datetime],
) -> CaseService:
    """The case service over a runtime that may not have started yet (its store and pool come later)."""
    return CaseService(
        lambda: runtime.aggregates,
        lambda: runtime.pool,
        CatalogueQueries(lambda: runtime.pool),
        region=settings.cases.region,
        clock=clock,
        materials_exist=materials.exists,
        calendar=calendars.provider,
        number_pattern=settings.cases.number_pattern,
        password_hasher=query_passwords(settings).hash,
        partners=PartnerQueries(lambda: runtime.pool),
    )


def build_booking_service(
    settings: Settings,
    aggregates: Callable[[], AggregateStore],
    calendars: CalendarService,
    clock: Callable[[], datetime],
) -> BookingService:
    """Caps and bans are filed under a key of the ID number made with the last (oldest) data key.

    The last one, because keys are rotated by putting a new one first: the person keys
    stay the same for as long as the oldest key is kept.
    """
    secret = settings.privacy.data_keys[-1][1]
    return BookingService(aggregates, calendar=calendars.provider, clock=clock, person_key=PersonKeys(secret))


def rating_rules(settings: Settings) -> RatingRules:
    return RatingRules(
        window_days=settings.cases.rating_window_days,
        rectification_working_days=settings.cases.rectification_days,
    )


def build_rating_service(
    settings: Settings,
    aggregates: Callable[[], AggregateStore],
    calendars: CalendarService,
    catalogue: CatalogueQueries,
) -> RatingService:
    return RatingService(
        aggregates,
        clock=utc_now,
        calendar=calendars.provider,
        item_departments=catalogue.item_departments,
        rules=rating_rules(settings),
    )


def build_complaint_service(
    settings: Settings,
    aggregates: Callable[[], AggregateStore],
    pool: Callable[[], asyncpg.Pool],
    calendars: CalendarService,
) -> ComplaintService:
    return ComplaintService(
        aggregates, pool, clock=utc_now, calendar=calendars.provider, region=settings.cases.region
    )


def material_store(settings: Settings) -> MaterialStore:
    """Uploaded materials; 通办 handoffs' files fetched from partner cities land here too."""
    return MaterialStore(settings.files.directory, max_bytes=settings.files.max_upload_bytes)


def query_passwords(settings: Settings) -> QueryPasswords:
    """The 查询密码 hash, keyed by the data keys: the command side hashes, the anonymous lookup verifies."""
    return QueryPasswords(settings.privacy.data_keys)


def problem_map() -> ProblemMap:
    """Every error of the backend's own that a caller can cause, with its status and stable type."""
    problems = ProblemMap()
    problems.register(MaterialTooLargeError, 413, "material-too-large", "Material file too large")
    problems.register(MaterialTypeError, 415, "material-type", "Material file type not accepted")
    problems.register(MaterialNotFoundError, 404, "material-not-found", "No such material")
    problems.register(MaterialCorruptedError, 500, "material-corrupted", "Stored material is damaged")
    register_case_problems(problems)
    register_case_service_problems(problems)
    problems.register(DeviceNotFoundError, 404, "device-not-found", "No such device on this account")
    problems.register(UnknownTemplateError, 400, "wechat-template-unknown", "No such WeChat template")
    problems.register(InvalidPreferenceError, 400, "preference-invalid", "No such notification preference")
    problems.register(NotificationNotFoundError, 404, "notification-not-found", "No such notification")
    problems.register(NotificationNotDeadError, 409, "notification-not-dead", "Notification is not dead")
    register_booking_problems(problems)
    register_queue_problems(problems)
    register_queue_service_problems(problems)
    problems.register(AppointmentNotFoundError, 404, "appointment-not-found", "No such appointment")
    problems.register(NotHallManagerError, 403, "not-hall-manager", "Only the hall's manager may do this")
    register_rating_problems(problems)
    register_audit_problems(problems)
    register_audit_service_problems(problems)
    register_complaint_problems(problems)
    register_stream_problems(problems)
    register_webhook_problems(problems)
    register_federation_problems(problems)
    register_federation_admin_problems(problems)
    register_partner_problems(problems)
    problems.register(ComplaintNotFoundError, 404, "complaint-not-found", "No such complaint")
    problems.register(RatingNotFoundError, 404, "rating-not-found", "No such rating occasion")
    problems.register(TicketNotFoundError, 404, "rating-ticket-not-found", "No such rectification ticket")
    return problems


def build_app(settings: Settings, url: str) -> Litestar:
    # The store and the pool exist once the runtime has started: hence the lambdas.
    calendars = CalendarService(lambda: runtime.aggregates, settings.cases.region)
    runtime = build_runtime(settings, url, with_consumers=settings.consumers.enabled, calendars=calendars)
    materials = material_store(settings)
    catalogue = CatalogueQueries(lambda: runtime.pool)
    cases = CaseQueries(
        lambda: runtime.pool, calendars.provider, utc_now, passwords=query_passwords(settings)
    )
    work_queue = WorkQueueQueries(lambda: runtime.pool, calendars.provider, utc_now)
    case_service = build_case_service(settings, runtime, materials, calendars, utc_now)
    bookings = build_booking_service(settings, lambda: runtime.aggregates, calendars, utc_now)
    appointments = AppointmentQueries(lambda: runtime.pool, calendars.provider, utc_now)
    ratings = build_rating_service(settings, lambda: runtime.aggregates, calendars, catalogue)
    rating_reads = RatingQueries(lambda: runtime.pool, calendars.provider, utc_now)
    complaints = build_complaint_service(
        settings, lambda: runtime.aggregates, lambda: runtime.pool, calendars
    )
    complaint_reads = ComplaintQueries(lambda: runtime.pool, calendars.provider, utc_now)
    hall_queue = HallQueueService(lambda: runtime.aggregates, clock=utc_now, bookings=bookings)
    streams = StreamQueries(lambda: runtime.pool, runtime.mapper.to_domain_event)
    hub = StreamHub(
        url, settings.database.schema, streams, buffer=settings.streams.sse_buffer, registry=runtime.registry
    )

    async def load_services() -> None:
        # Idempotent: an unchanged catalogue appends nothing, so every worker may run it.
        report = await load_catalogue(runtime.aggregates, settings.cases.catalogue or DEFAULT_CATALOGUE)
        log.info("catalogue: %s", report)
        await calendars.current()
        calendars.start_refreshing(60)

    config = ApiConfig(
        jwt_secret=settings.auth.jwt_secret,
        token_ttl_seconds=settings.auth.token_ttl_seconds,
        dev_login=settings.auth.dev_login,
        max_body_bytes=settings.http.max_body_bytes,
    )
    app = create_app(
        config,
        health=runtime.health,
        registry=runtime.registry,
        route_handlers=[
            catalogue_router(catalogue),
            Router(
                path="/api/v1",
                route_handlers=[
                    *case_query_handlers(cases, work_queue),
                    *case_command_handlers(case_service),
                ],
            ),
            admin_calendar_router(calendars),
            my_notifications_router(
                Contacts(lambda: runtime.pool, utc_now), InboxQueries(lambda: runtime.pool, utc_now)
            ),
            admin_notifications_router(OutboxAdmin(lambda: runtime.pool, utc_now)),
            materials_router(materials, max_upload_bytes=settings.files.max_upload_bytes),
            booking_router(bookings, appointments),
            rating_router(ratings, rating_reads),
            audit_router(
                AuditService(
                    lambda: runtime.aggregates, lambda: runtime.pool, cases, clock=utc_now, via=Via.API
                )
            ),
            complaint_router(complaints, complaint_reads),
            queue_router(hall_queue, HallQueueQueries(lambda: runtime.pool, utc_now)),
            stream_router(
                streams,
                hub,
                page_limit=settings.streams.page_limit,
                heartbeat_seconds=settings.streams.heartbeat_seconds,
            ),
            partner_router(
                PartnerService(lambda: runtime.aggregates, clock=utc_now, own_region=settings.cases.region),
                PartnerQueries(lambda: runtime.pool),
            ),
            federation_keys_router(settings.cases.region, published_keys(settings.federation.keys)),
            federation_messages_router(
                build_inbox(
                    settings,
                    lambda: runtime.pool,
                    PartnerQueries(lambda: runtime.pool),
                    federation_handlers(  # the kinds it applies
                        settings, lambda: runtime.pool, lambda: runtime.aggregates, utc_now, materials
                    ).keys(),
                    utc_now,
                )
            ),
            federation_files_router(
                build_handoff_files(
                    settings,
                    lambda: runtime.pool,
                    lambda: runtime.aggregates,
                    PartnerQueries(lambda: runtime.pool),
                    materials,
                    utc_now,
                )
            ),
            admin_federation_router(build_admin(lambda: runtime.pool)),
            tongban_router(
                TongbanBoardQueries(lambda: runtime.pool, utc_now, PartnerQueries(lambda: runtime.pool))
            ),
            webhook_router(
                build_webhook_subscriptions(
                    settings, lambda: runtime.pool, runtime.mapper.to_domain_event, utc_now
                )
            ),
        ],
        problem_map=problem_map(),
        on_startup=[runtime.start, load_services, hub.start],  # in this order: loading needs the store
        on_shutdown=[hub.stop, calendars.stop_refreshing, runtime.stop],
    )
    app.state.runtime = runtime
    return app
