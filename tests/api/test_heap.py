"""api.heap: what exists at a settle is kept out of later collector passes, and what an earlier
settle froze is still reclaimed once it became garbage (publishing replaces a generation's data)."""

from __future__ import annotations

import datetime as dt
import gc
import time
import weakref
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api import heap
from api.app import create_app
from boundaries.generations import publish_layers
from boundaries.sample import build_mini_county
from gis.core import db
from gis.core.settings import Settings


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    yield
    if heap._deferred is not None:  # no settle in the middle of a later test
        heap._deferred.cancel()
        heap._deferred = None
    gc.unfreeze()  # the rest of the test session runs with the collector as usual


def test_settle_freezes_what_lives_and_reclaims_what_it_froze_before(monkeypatch: pytest.MonkeyPatch) -> None:
    # A settled baseline first: what earlier tests froze and then dropped (their apps and those
    # apps' caches) is reclaimed by a settle, which would otherwise hide the objects added here.
    heap.settle(force=True)
    before = gc.get_freeze_count()
    keep = [Node() for _ in range(1000)]
    assert heap.settle(force=True)
    # A few objects of earlier tests may still die meanwhile (threads of closed apps ending).
    assert gc.get_freeze_count() >= before + len(keep) - 50

    # A reference cycle frozen while alive, then dropped: only the collector can free it, and the
    # next settle (after the next load) must let it do so.
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    assert heap.settle(force=True)
    del a, b
    gc.collect()
    assert gone() is not None  # frozen: no pass looks at it
    monkeypatch.setattr(heap, "MIN_INTERVAL_S", 0.5)
    assert not heap.settle()  # too soon after the last: deferred, it stays frozen for now
    assert gone() is not None
    deadline = time.monotonic() + 10
    while gone() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone() is None  # the deferred settle ran and let the collector reclaim it


@pytest.fixture
def published_engine(database_url: str) -> Iterator[Engine]:
    with db.scratch_database(database_url, "heap_preload") as url:
        engine = db.make_engine(url, pool_size=2, max_overflow=2)
        with engine.begin() as conn:
            publish_layers(
                conn, build_mini_county(), note="t", author="tests", published_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
            )
        try:
            yield engine
        finally:
            engine.dispose()


def test_a_starting_worker_preloads_the_generation_in_force_and_settles(published_engine: Engine) -> None:
    gc.unfreeze()
    app = create_app(Settings(freeze_heap=True), engine=published_engine)
    with TestClient(app):
        service = app.state.lookup
        assert len(service.loaded_generations()) == 1
        assert gc.get_freeze_count() > 0
    gc.unfreeze()
    app = create_app(Settings(freeze_heap=False), engine=published_engine)
    with TestClient(app):
        assert len(app.state.lookup.loaded_generations()) == 1  # preloading does not depend on freezing
        assert gc.get_freeze_count() == 0
