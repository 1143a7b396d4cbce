"""送达: the result reaches the applicant as an 电子证照, at a window, or by EMS; only after approval."""

from __future__ import annotations

from datetime import datetime

from domain.case import checks
from domain.case.base import CaseBase
from domain.case.errors import IllegalTransitionError, InvalidCommandError
from domain.case.records import Delivery, DeliveryMethod, Pickup
from domain.case.status import ResultCode
from domain.case.values import Actor, Channel, Role

ISSUERS = (Role.SYSTEM, Role.OFFICER, Role.CLERK)


class CaseDelivery(CaseBase):
    def _check_deliverable(self, command: str, actor: Actor | None = None) -> None:
        if actor is not None and actor.role is Role.PARTNER:
            # 跨城通办: the handling city sent the result; a 多地联办 city may, once its own part is approved.
            part = self.partner_handoff(actor.id)
            if part is None:
                raise IllegalTransitionError(
                    f"cannot {command}: the case is not with partner city {actor.id}"
                )
            if part.result is ResultCode.APPROVED:
                return
        if not self.approved:
            raise IllegalTransitionError(
                f"cannot {command}: the case has no standing approval ({self.status.label})"
            )

    def issue_e_licence(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        licence_number: str,
        item_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """电子证照 issued; for a bundle, name the child item it belongs to."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (*ISSUERS, Role.PARTNER))
        self._check_deliverable("issue an e-licence", actor)
        checks.text(licence_number, "licence number")
        if item_code is not None and item_code not in self.item_codes:
            raise InvalidCommandError(f"item {item_code} is not part of this case")
        if any(d.reference == licence_number for d in self.deliveries):
            raise InvalidCommandError(f"licence {licence_number} was already issued for this case")
        self._record(
            self.ELicenceIssued,
            actor,
            channel,
            at,
            request_id,
            licence_number=licence_number,
            item_code=item_code,
        )

    class ELicenceIssued(CaseBase.Event):
        licence_number: str
        item_code: str | None

        def apply(self, aggregate: CaseDelivery) -> None:
            issued = Delivery(
                method=DeliveryMethod.E_LICENCE,
                reference=self.licence_number,
                delivered_at=self.timestamp,
                item_code=self.item_code,
            )
            aggregate.deliveries = (*aggregate.deliveries, issued)
            super().apply(aggregate)

    def prepare_pickup(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        pickup_code: str,
        hall: str,
        request_id: str | None = None,
    ) -> None:
        """The paper result waits at a window (待领取) under a pickup code."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.CLERK, Role.SYSTEM))
        self._check_deliverable("prepare a pickup")
        if self.pickup is not None:
            raise IllegalTransitionError("the result is already waiting for pickup")
        checks.text(pickup_code, "pickup code")
        checks.text(hall, "hall")
        self._record(self.ReadyForPickup, actor, channel, at, request_id, pickup_code=pickup_code, hall=hall)

    class ReadyForPickup(CaseBase.Event):
        pickup_code: str
        hall: str

        def apply(self, aggregate: CaseDelivery) -> None:
            aggregate.pickup = Pickup(code=self.pickup_code, hall=self.hall, ready_at=self.timestamp)
            super().apply(aggregate)

    def record_pickup(
        self, actor: Actor, channel: Channel, at: datetime, *, pickup_code: str, request_id: str | None = None
    ) -> None:
        """The applicant collected the result at the window, showing the pickup code."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.CLERK,))
        self._check_deliverable("record a pickup")
        waiting = self.pickup
        if waiting is None or any(d.method is DeliveryMethod.WINDOW_PICKUP for d in self.deliveries):
            raise IllegalTransitionError("no result is waiting for pickup")
        if pickup_code != waiting.code:
            raise InvalidCommandError("the pickup code does not match")
        self._record(
            self.PickedUp, actor, channel, at, request_id, pickup_code=pickup_code, hall=waiting.hall
        )

    class PickedUp(CaseBase.Event):
        pickup_code: str
        hall: str

        def apply(self, aggregate: CaseDelivery) -> None:
            handed = Delivery(
                method=DeliveryMethod.WINDOW_PICKUP, reference=self.pickup_code, delivered_at=self.timestamp
            )
            aggregate.deliveries = (*aggregate.deliveries, handed)
            super().apply(aggregate)

    def mail_result(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        waybill_number: str,
        carrier: str = "EMS",
        request_id: str | None = None,
    ) -> None:
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.CLERK, Role.SYSTEM, Role.PARTNER))
        self._check_deliverable("mail the result", actor)
        checks.text(waybill_number, "waybill number")
        checks.text(carrier, "carrier")
        if any(d.reference == waybill_number for d in self.deliveries):
            raise InvalidCommandError(f"waybill {waybill_number} is already recorded")
        self._record(
            self.Mailed, actor, channel, at, request_id, waybill_number=waybill_number, carrier=carrier
        )

    class Mailed(CaseBase.Event):
        waybill_number: str
        carrier: str

        def apply(self, aggregate: CaseDelivery) -> None:
            sent = Delivery(
                method=DeliveryMethod.MAIL, reference=self.waybill_number, delivered_at=self.timestamp
            )
            aggregate.deliveries = (*aggregate.deliveries, sent)
            super().apply(aggregate)
