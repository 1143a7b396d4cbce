"""Random key additions and retirements against one partner: whatever is tried, the key invariants hold."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from backend.store.mapper import make_mapper
from domain.case import Actor, Role
from domain.case.checks import BEIJING
from domain.tongban import Partner, PartnerError

pytestmark = pytest.mark.unit

MAPPER = make_mapper()
ADMIN = Actor(id="admin-1", role=Role.SUPERVISOR)
AT = datetime(2026, 3, 2, 9, 0, tzinfo=BEIJING)
KIDS = st.sampled_from(["a", "b", "c", "d"])
KEYS = st.sampled_from([base64.b64encode(bytes([n]) * 32).decode() for n in range(1, 6)])


class KeyRotation(RuleBasedStateMachine):
    @initialize(kid=KIDS, key=KEYS)
    def register(self, kid: str, key: str) -> None:
        self.partner = Partner.register(
            "430200", "株洲市", "https://zz.example", (), [(kid, key)], actor=ADMIN, at=AT
        )
        self.events: list[Any] = list(self.partner.collect_events())
        self.bound = {kid: key}  # every key id ever valid, and its key

    def attempt(self, command: Any) -> None:
        before = (dict(self.partner.keys), self.partner.version)
        try:
            command()
        except PartnerError:
            assert (dict(self.partner.keys), self.partner.version) == before  # a refusal records nothing
        new = self.partner.collect_events()
        self.events.extend(new)
        self.bound.update((e.kid, e.public_key) for e in new if isinstance(e, Partner.KeyAdded))

    @rule(kid=KIDS, key=KEYS)
    def add(self, kid: str, key: str) -> None:
        self.attempt(lambda: self.partner.add_key(kid, key, actor=ADMIN, at=AT))

    @rule(kid=KIDS)
    def retire(self, kid: str) -> None:
        self.attempt(lambda: self.partner.retire_key(kid, actor=ADMIN, at=AT))

    @invariant()
    def always_one_valid_key(self) -> None:
        assert self.partner.keys

    @invariant()
    def a_key_id_never_changes_its_key(self) -> None:
        assert len(self.bound) == len(set(self.bound.values()))
        for kid, key in (*self.partner.keys.items(), *self.partner.retired.items()):
            assert self.bound[kid] == key

    @invariant()
    def the_stored_history_rebuilds_the_same_partner(self) -> None:
        rebuilt: Any = None
        for event in self.events:
            rebuilt = MAPPER.to_domain_event(MAPPER.to_stored_event(event)).mutate(rebuilt)
        assert (rebuilt.keys, rebuilt.retired, rebuilt.version) == (
            self.partner.keys,
            self.partner.retired,
            self.partner.version,
        )
        assert rebuilt.modified_on.utcoffset() == BEIJING.utcoffset(None)


KeyRotation.TestCase.settings = settings(max_examples=60, stateful_step_count=20, deadline=None)
test_key_rotation = KeyRotation.TestCase
