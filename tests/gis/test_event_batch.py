"""A batch of the SSE hub builds each scope's messages once and shares them (gis.work.eventhub):
the shared bytes hold exactly the events the scope sees, the same as filtering event by event."""

from __future__ import annotations

import datetime as dt

from gis.people.keys import Principal
from gis.people.scope import Scope
from gis.work import events as ev
from gis.work.eventhub import Batch

TOWN_A, TOWN_B = "330421001", "330421002"


def _event(n: int, town: str, grid: str) -> ev.Event:
    codes: dict[str, str | None] = dict.fromkeys(ev.CODE_COLUMNS)
    codes.update(town_code=town, village_code=grid[:12], grid_code=grid)
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    row = (n, "fire", "grid_patrol", "reported", at, at, 0, "addr", "Zhang San", "13800000000", grid, 120.9, 30.8)
    data = {"id": n, "incident_id": n, "action": "report", **codes}
    return ev.Event(n, "incident.created", at, codes, data, row)


def test_each_scope_gets_its_events_once_built_and_shared() -> None:
    events = [
        _event(1, TOWN_A, TOWN_A + "001001"),
        _event(2, TOWN_B, TOWN_B + "001001"),
        _event(3, TOWN_B, TOWN_B + "001002"),
    ]
    batch = Batch(events)
    county = Principal(1, "c", "viewer")
    town = Principal(2, "t", "viewer", Scope.parse(TOWN_B))
    grid = Principal(3, "g", "viewer", Scope.parse(TOWN_B + "001002"))
    grid_again = Principal(4, "g2", "viewer", Scope.parse(TOWN_B + "001002"))
    for principal in (county, town, grid):
        expected = b"".join(e.encoded("viewer") for e in events if ev.visible(e, principal))
        assert batch.joined(principal, "wgs84") == expected
    assert [e.id for e in events if ev.visible(e, grid)] == [3]
    # The second stream of the same scope and masking gets the very same bytes object.
    assert batch.joined(grid_again, "wgs84") is batch.joined(grid, "wgs84")


def test_masking_is_part_of_what_is_shared() -> None:
    batch = Batch([_event(1, TOWN_A, TOWN_A + "001001")])
    viewer = batch.joined(Principal(1, "v", "viewer"), "wgs84")
    dispatcher = batch.joined(Principal(2, "d", "dispatcher"), "wgs84")
    assert b"Zhang San" in dispatcher
    assert b"Zhang San" not in viewer


def test_prefix_index_agrees_with_visible_for_every_scope_shape() -> None:
    """``Batch.in_scope`` (look-ups by code prefix) and ``events.visible`` (the scope's own test)
    choose the same events for scopes of every layer, several codes, a beat and lookup-only."""
    events = [
        _event(1, TOWN_A, TOWN_A + "001001"),
        _event(2, TOWN_A, TOWN_A + "002003"),
        _event(3, TOWN_B, TOWN_B + "001001"),
        _event(4, TOWN_B, TOWN_B + "004002"),
    ]
    events[3].codes["beat_code"] = "330421J0101"
    scopes = [
        TOWN_A,
        TOWN_B + "001",
        TOWN_A + "002003",
        f"{TOWN_A}001001,{TOWN_B}004",
        "330421J0101",
        "330421J01",
        TOWN_B + "009",  # a village with nothing in the batch
        "lookup",
        "",
    ]
    for text in scopes:
        principal = Principal(1, "p", "viewer", Scope.parse(text))
        batch = Batch(events)  # fresh: the index is built for this scope's lengths alone
        expected = [e.id for e in events if ev.visible(e, principal)]
        assert [e.id for e in batch.in_scope(principal.scope)] == expected, text
    # One batch asked in turn by every scope (the index grows length by length) answers the same.
    shared = Batch(events)
    for text in scopes:
        principal = Principal(1, "p", "viewer", Scope.parse(text))
        assert [e.id for e in shared.in_scope(principal.scope)] == [e.id for e in events if ev.visible(e, principal)]


def test_a_stream_is_offered_only_batches_with_something_in_its_scope() -> None:
    from gis.work.eventhub import Subscription

    grid = Subscription(0, Principal(1, "g", "reporter", Scope.parse(TOWN_B + "001001")), "wgs84")
    county = Subscription(0, Principal(2, "c", "viewer"), "wgs84")
    elsewhere = Batch([_event(1, TOWN_A, TOWN_A + "001001")])
    mine = Batch([_event(2, TOWN_B, TOWN_B + "001001")])
    assert not grid.wants(elsewhere)
    assert grid.wants(mine)
    assert county.wants(elsewhere) and county.wants(mine)
