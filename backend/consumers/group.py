"""A batch for a group of consumers: one read, one decoding, one position update; in the caller's transaction.

Run apart, every consumer pays for its own transaction, its own read of the same events
and its own decoding of them, on every wake-up. Run as a group on one connection, a batch
is BEGIN, a read of every member's served generation and position, a read of the events
after the lowest of those positions (for the union of the members' topics), each member's
handler, one statement for every position, and COMMIT, whatever the number of members.

A group moves at the pace of its slowest member: the events read start at the lowest
position, so a member far ahead of the rest waits for them (the runner keeps a member that
fell behind out of the group until it has caught up on its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from backend.consumers.base import Consumer, Decode, Envelope, table_suffix, tracking_name
from backend.consumers.batch import BatchResult, ConsumerNotInstalledError, ServedBatch, to_envelope
from backend.consumers.generations import ServedGeneration, shape_change
from backend.store.errors import TrackingConflictError

# Per member: the generation the views serve, locked FOR SHARE so that a swap waits for this
# batch; the generation this statement's snapshot saw, whose position it read (they differ
# when the lock waited for a swap to commit, and then the member sits this batch out; see
# batch._SERVED); and the head, in the same snapshot as the positions. synchronous_commit off
# for the transaction, as for a single consumer's batch (see batch.py).
_STATES = (
    "WITH served AS (SELECT consumer_name, generation, schema_version, tables "
    "FROM consumer_generations WHERE consumer_name = ANY($1::text[]) FOR SHARE), "
    "seen AS (SELECT consumer_name, generation FROM consumer_generations "
    "WHERE consumer_name = ANY($1::text[])), "
    "head AS (SELECT coalesce(max(notification_id), 0) AS id FROM stored_events) "
    "SELECT set_config('synchronous_commit', 'off', true), served.consumer_name AS name, "
    "served.generation AS served, served.schema_version, served.tables, seen.generation AS seen, "
    "t.notification_id AS position, head.id AS head "
    "FROM served JOIN seen USING (consumer_name) "
    "JOIN tracking t ON t.application_name = seen.consumer_name || '#g' || seen.generation "
    "CROSS JOIN head"
)
# Bounded by the head read above: this statement's snapshot is newer, and every id up to that
# head is visible in it (ids are gapless and commit in order), so none is skipped.
_EVENTS = (
    "SELECT notification_id, originator_id, originator_version, topic, state, recorded_at "
    "FROM stored_events WHERE notification_id > $1 AND notification_id <= $2 {topics} "
    "ORDER BY notification_id LIMIT $3"
)
_ADVANCE = (
    "UPDATE tracking SET notification_id = v.position, updated_at = now() "
    "FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(name, position, was) "
    "WHERE application_name = v.name AND notification_id = v.was"
)


@dataclass(frozen=True, slots=True)
class GroupBatch:
    outcomes: dict[str, ServedBatch]  # by member name, one for every member

    @property
    def caught_up(self) -> bool:
        """Every member that handled a batch reached the head (one that did not handle must run again)."""
        handled = [o.result for o in self.outcomes.values() if o.change is None]
        return all(result is not None and result.caught_up for result in handled)


async def process_group_batch(
    conn: asyncpg.Connection, members: Sequence[Consumer], decode: Decode, limit: int
) -> GroupBatch:
    """A batch for every member into its served generation; must run inside a transaction on conn."""
    by_name = {m.name: m for m in members}
    states = await conn.fetch(_STATES, list(by_name))
    if len(states) < len(by_name):
        missing = sorted(set(by_name) - {row["name"] for row in states})
        raise ConsumerNotInstalledError(f"consumers {missing} are not installed")
    outcomes: dict[str, ServedBatch] = {}
    ready: list[tuple[Consumer, ServedGeneration, int]] = []
    head = 0
    for row in states:
        member = by_name[row["name"]]
        served = ServedGeneration(row["served"], row["schema_version"], tuple(row["tables"]))
        head = row["head"]
        change = shape_change(member, served)
        if change is not None or row["seen"] != served.generation:
            outcomes[member.name] = ServedBatch(served, change, None)
        elif row["position"] >= head:
            outcomes[member.name] = ServedBatch(served, None, BatchResult(row["position"], head, 0))
        else:
            ready.append((member, served, row["position"]))
    if not ready:
        return GroupBatch(outcomes)

    start = min(position for _, _, position in ready)
    rows = await _read_events(conn, [member for member, _, _ in ready], start, head, limit)
    end = rows[-1]["notification_id"] if len(rows) == limit else head
    envelopes = _Envelopes(rows, decode)
    names, positions, was = [], [], []
    for member, served, position in ready:
        mine = envelopes.after(position, member)
        if mine:
            await member.handle(conn, mine, table_suffix(served.generation))
        new_position = max(position, end)
        names.append(tracking_name(member.name, served.generation))
        positions.append(new_position)
        was.append(position)
        outcomes[member.name] = ServedBatch(served, None, BatchResult(new_position, head, len(mine)))
    status = await conn.execute(_ADVANCE, names, positions, was)
    if status != f"UPDATE {len(names)}":
        # Someone else advanced one of them from the same position: no effect may commit.
        raise TrackingConflictError(f"a position of {names} moved on while this group batch ran")
    return GroupBatch(outcomes)


async def _read_events(
    conn: asyncpg.Connection, members: Sequence[Consumer], start: int, head: int, limit: int
) -> list[asyncpg.Record]:
    """The events after start up to head, of any topic some member reads."""
    if any(m.topics is None for m in members):
        return list(await conn.fetch(_EVENTS.format(topics=""), start, head, limit))
    topics = sorted(set().union(*(m.topics or () for m in members)))
    if not topics:
        return []
    sql = _EVENTS.format(topics="AND topic = ANY($4::text[])")
    return list(await conn.fetch(sql, start, head, limit, topics))


class _Envelopes:
    """The rows read, each decoded at most once whatever the number of members that want it."""

    def __init__(self, rows: Sequence[asyncpg.Record], decode: Decode) -> None:
        self.rows, self.decode = rows, decode
        self._decoded: dict[int, Envelope] = {}
        self._bare: dict[int, Envelope] = {}

    def after(self, position: int, member: Consumer) -> list[Envelope]:
        decodes = getattr(member, "decodes", True)
        cache = self._decoded if decodes else self._bare
        found = []
        for index, row in enumerate(self.rows):
            if row["notification_id"] <= position or (
                member.topics is not None and row["topic"] not in member.topics
            ):
                continue
            envelope = cache.get(index)
            if envelope is None:
                envelope = cache[index] = to_envelope(row, self.decode if decodes else None)
            found.append(envelope)
        return found
