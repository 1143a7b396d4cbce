"""Items and bundles publish, revise, withdraw and reinstate as events; versions are what cases cite."""

from __future__ import annotations

import pytest
from eventsourcing.utils import get_topic
from msgspec.structs import replace

from domain.catalogue import (
    Bundle,
    CatalogueError,
    CatalogueListing,
    EntryNotWithdrawnError,
    EntryWithdrawnError,
    InvalidBundleError,
    InvalidServiceItemError,
    ServiceItem,
    TimeLimit,
    bundle_id,
    item_id,
    listing_id,
)
from tests.unit.test_catalogue_rules import code, sample_bundle, sample_item

pytestmark = pytest.mark.unit


def names(aggregate: ServiceItem | Bundle | CatalogueListing) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def test_ids_are_derived_from_codes_and_kinds_do_not_collide() -> None:
    assert ServiceItem.publish(sample_item(1)).id == item_id(code(1)) == item_id(code(1))
    assert item_id(code(1)) != item_id(code(2))
    assert item_id(code(1)) != bundle_id(code(1))
    assert Bundle.publish(sample_bundle()).id == bundle_id(sample_bundle().code)
    assert listing_id("430100") != listing_id("430200")


def test_an_item_lives_through_its_versions() -> None:
    item = ServiceItem.publish(sample_item())
    assert (item.version, item.withdrawn) == (1, False)
    assert item.revise(sample_item()) is False  # same spec: no event, no new version
    assert item.version == 1
    faster = sample_item(promised_limit=TimeLimit(0, "working_day"))
    assert item.revise(faster) is True
    assert (item.version, item.spec) == (2, faster)
    assert item.withdraw("已从事项清单移除") is True
    assert item.withdraw("again") is False
    assert (item.version, item.withdrawn) == (3, True)
    with pytest.raises(EntryWithdrawnError):
        item.revise(sample_item())
    item.reinstate(sample_item())
    assert (item.version, item.withdrawn, item.spec) == (4, False, sample_item())
    with pytest.raises(EntryNotWithdrawnError):
        item.reinstate(sample_item())
    assert names(item) == ["Published", "Revised", "Withdrawn", "Reinstated"]


def test_rules_are_checked_by_commands_and_nothing_is_recorded_when_they_fail() -> None:
    with pytest.raises(InvalidServiceItemError):
        ServiceItem.publish(sample_item(trips=5))
    item = ServiceItem.publish(sample_item())
    item.collect_events()
    with pytest.raises(InvalidServiceItemError):
        item.revise(sample_item(materials=()))
    with pytest.raises(CatalogueError, match="cannot give"):
        item.revise(sample_item(2))
    assert item.collect_events() == [] and item.version == 1


def test_a_bundle_has_the_same_lifecycle() -> None:
    bundle = Bundle.publish(sample_bundle())
    assert bundle.revise(sample_bundle()) is False
    assert bundle.revise(replace(sample_bundle(), name="企业开办“一件事”")) is True
    assert bundle.withdraw("gone") is True
    bundle.reinstate(sample_bundle())
    assert names(bundle) == ["Published", "Revised", "Withdrawn", "Reinstated"]
    assert bundle.version == 4
    with pytest.raises(InvalidBundleError):
        Bundle.publish(sample_bundle(children=(code(1),)))


def test_topics_are_stable() -> None:
    # Stored events name these; renaming a class would need its old topic registered.
    assert get_topic(ServiceItem.Published) == "domain.catalogue:ServiceItem.Published"
    assert get_topic(Bundle.Withdrawn) == "domain.catalogue:Bundle.Withdrawn"


def test_the_listing_records_only_real_changes() -> None:
    listing = CatalogueListing.record("430100", (code(2), code(1)), ())
    assert listing.items == (code(1), code(2))
    assert listing.relist((code(1), code(2)), ()) is False
    assert listing.relist((code(1),), ()) is True
    assert names(listing) == ["Listed", "Relisted"]
