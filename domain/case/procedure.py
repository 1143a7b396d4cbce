"""特别程序 and 延期: periods that stop the clock, and the one extension the law allows (Art. 42)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import msgspec

from domain.case import checks
from domain.case.base import CaseBase
from domain.case.errors import IllegalTransitionError, InvalidCommandError, NotAuthorisedActorError
from domain.case.records import Extension, ExtensionKind, Suspension, SuspensionKind
from domain.case.status import UNDER_WAY, CaseStatus
from domain.case.values import Actor, Channel, MaterialIssue, Role

HANDLERS = (Role.OFFICER, Role.CLERK)


class CaseProcedure(CaseBase):
    def suspend(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        kind: SuspensionKind,
        reason: str,
        expected_end: date,
        issues: Iterable[MaterialIssue] = (),
        request_id: str | None = None,
    ) -> None:
        """Enter a special procedure; a 待补正 suspension carries its complete 补正 list."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, HANDLERS)
        if self.open_suspension is not None:
            raise IllegalTransitionError(
                "cannot suspend: a special procedure is already open; resume it first"
            )
        self._require("suspend", UNDER_WAY)
        checks.text(reason, "reason")
        if expected_end < at.date():
            raise InvalidCommandError("the expected end is already past")
        listed = tuple(issues)
        if kind is SuspensionKind.AWAITING_SUPPLEMENT:
            listed = checks.issues(listed)
        elif listed:
            raise InvalidCommandError("only a 待补正 suspension lists materials")
        self._record(
            self.Suspended,
            actor,
            channel,
            at,
            request_id,
            kind=kind,
            reason=reason,
            expected_end=expected_end,
            issues=listed,
        )

    class Suspended(CaseBase.Event):
        kind: SuspensionKind
        reason: str
        expected_end: date
        issues: tuple[MaterialIssue, ...]

        def apply(self, aggregate: CaseProcedure) -> None:
            period = Suspension(
                kind=self.kind, reason=self.reason, started_at=self.timestamp, expected_end=self.expected_end
            )
            aggregate.suspensions = (*aggregate.suspensions, period)
            aggregate.requested = {**aggregate.requested, **{i.material_id: i.reason for i in self.issues}}
            super().apply(aggregate)

    def resume(self, actor: Actor, channel: Channel, at: datetime, *, request_id: str | None = None) -> None:
        """End the open special procedure; the clock runs again."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (*HANDLERS, Role.SYSTEM))
        self._require("resume", (CaseStatus.SUSPENDED,))
        self._record(self.Resumed, actor, channel, at, request_id)

    class Resumed(CaseBase.Event):
        def apply(self, aggregate: CaseProcedure) -> None:
            *before, last = aggregate.suspensions
            aggregate.suspensions = (*before, msgspec.structs.replace(last, ended_at=self.timestamp))
            super().apply(aggregate)

    def request_extension(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        kind: ExtensionKind,
        reason: str,
        request_id: str | None = None,
    ) -> None:
        """Ask the head of the office for the extension: +10 working days, or +15 for joint handling."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.OFFICER,))
        self._require("request an extension", UNDER_WAY | {CaseStatus.SUSPENDED})
        if self.extension_request is not None:
            raise IllegalTransitionError("an extension request is already waiting for approval")
        if self.extensions:
            raise IllegalTransitionError("the law allows one extension, and it was granted")
        checks.text(reason, "reason")
        self._record(self.ExtensionRequested, actor, channel, at, request_id, kind=kind, reason=reason)

    class ExtensionRequested(CaseBase.Event):
        kind: ExtensionKind
        reason: str

        def apply(self, aggregate: CaseProcedure) -> None:
            aggregate.extension_request = Extension(
                kind=self.kind, reason=self.reason, requested_by=self.actor.id, requested_at=self.timestamp
            )
            super().apply(aggregate)

    def _pending_extension(self, actor: Actor, command: str) -> Extension:
        self._require(command, UNDER_WAY | {CaseStatus.SUSPENDED})
        pending = self.extension_request
        if pending is None:
            raise IllegalTransitionError(f"cannot {command}: no extension was requested")
        if actor.id == pending.requested_by:
            raise NotAuthorisedActorError("an extension is decided by someone other than who asked for it")
        return pending

    def approve_extension(
        self, actor: Actor, channel: Channel, at: datetime, *, request_id: str | None = None
    ) -> None:
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.OFFICER,))
        pending = self._pending_extension(actor, "approve an extension")
        self._record(self.ExtensionApproved, actor, channel, at, request_id, kind=pending.kind)

    class ExtensionApproved(CaseBase.Event):
        kind: ExtensionKind  # its duration is kind.duration

        def apply(self, aggregate: CaseProcedure) -> None:
            pending = aggregate.extension_request
            assert pending is not None
            granted = msgspec.structs.replace(pending, approved_by=self.actor.id, approved_at=self.timestamp)
            aggregate.extensions = (*aggregate.extensions, granted)
            aggregate.extension_request = None
            super().apply(aggregate)

    def refuse_extension(
        self, actor: Actor, channel: Channel, at: datetime, *, reason: str, request_id: str | None = None
    ) -> None:
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.OFFICER,))
        self._pending_extension(actor, "refuse an extension")
        checks.text(reason, "reason")
        self._record(self.ExtensionRefused, actor, channel, at, request_id, reason=reason)

    class ExtensionRefused(CaseBase.Event):
        reason: str

        def apply(self, aggregate: CaseProcedure) -> None:
            aggregate.extension_request = None
            super().apply(aggregate)
