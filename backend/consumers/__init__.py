"""Consumers: everything that follows the event log (projections, policies, timers, fan-out)."""

from backend.consumers.base import Consumer, Decode, Envelope, table_suffix, tracking_name
from backend.consumers.batch import BatchResult, ConsumerNotInstalledError, UndecodableEventError
from backend.consumers.generations import ensure_installed
from backend.consumers.rebuild import RebuildInProgressError, rebuild
from backend.consumers.runner import ConsumerRunner
from backend.consumers.status import ConsumerStatus, LagMetrics, consumer_status
from backend.consumers.upgrade import bring_up_to_date

__all__ = [
    "BatchResult",
    "Consumer",
    "ConsumerNotInstalledError",
    "ConsumerRunner",
    "ConsumerStatus",
    "Decode",
    "Envelope",
    "LagMetrics",
    "RebuildInProgressError",
    "UndecodableEventError",
    "bring_up_to_date",
    "consumer_status",
    "ensure_installed",
    "rebuild",
    "table_suffix",
    "tracking_name",
]
