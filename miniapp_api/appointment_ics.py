"""An appointment as an iCalendar event (RFC 5545), with a reminder before it, for the phone's calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Alarm, Calendar, Event

from domain.booking import Appointment, AppointmentState
from domain.personal import mask
from projections.appointments import HallView

# Far enough ahead to leave home, the way hall staff advise on the phone.
REMINDER_BEFORE = timedelta(hours=1)
_ACTIVE = (AppointmentState.HELD, AppointmentState.CONFIRMED, AppointmentState.CHECKED_IN)


def appointment_ics(appointment: Appointment, hall: HallView, *, stamp: datetime) -> bytes:
    """One VEVENT with a display alarm; a cancelled appointment is sent as cancelled, so calendars drop it."""
    group = hall.config.group(appointment.group)
    what = group.name if group is not None else appointment.group
    calendar = Calendar()
    calendar.add("prodid", "-//citypass//政务服务预约//ZH")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"{appointment.id}@citypass")
    event.add("dtstamp", stamp)
    # In UTC: a fixed +08:00 offset would need a VTIMEZONE of our own, which calendars read unevenly.
    event.add("dtstart", appointment.slot.start.astimezone(UTC))
    event.add("dtend", appointment.slot.end.astimezone(UTC))
    event.add("summary", f"政务服务预约：{what}")
    event.add("location", f"{hall.name}（{hall.address}）")
    lines = [
        f"事项编码：{appointment.item_code}",
        f"预约人：{mask(appointment.visitor.name)}",
        "请携带本人有效身份证件，提前到达取号。",
    ]
    event.add("description", "\n".join(lines))
    active = appointment.state in _ACTIVE
    event.add("status", "CONFIRMED" if active else "CANCELLED")
    if active:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"一小时后：{hall.name} {what}")
        alarm.add("trigger", -REMINDER_BEFORE)
        event.add_component(alarm)
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical
