"""api.rate_limits: one count per key across worker processes, refill, refunds, slot reuse."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from api import rate_limits
from api.rate_limits import LocalBuckets, SharedBuckets, fingerprint, table_path
from gis.people.keys import Principal

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(rate_limits.time, "monotonic", c)
    return c


def _allowed(buckets: SharedBuckets | LocalBuckets, key: int, limit: int, n: int) -> int:
    return sum(1 for _ in range(n) if buckets.take(key, limit) == 0)


def test_two_workers_mapping_one_table_share_the_count(tmp_path: Path, clock: Clock) -> None:
    a = SharedBuckets(tmp_path / "t.buckets")
    b = SharedBuckets(tmp_path / "t.buckets")
    assert _allowed(a, 7, 5, 3) == 3
    assert _allowed(b, 7, 5, 3) == 2  # the limit of 5 holds across both
    wait = a.take(7, 5)
    assert wait == pytest.approx(12.0)  # one token every 60/5 s
    assert _allowed(b, 8, 5, 5) == 5  # another key has its own bucket
    clock.now += 12.0
    assert _allowed(b, 7, 5, 2) == 1  # refilled at limit a minute
    b.refund(7, 5)
    assert _allowed(a, 7, 5, 2) == 1
    a.reset()
    assert _allowed(b, 7, 5, 6) == 5


_WORKER = """
import sys, time
from pathlib import Path
from api.rate_limits import SharedBuckets
buckets = SharedBuckets(Path(sys.argv[1]))
start_at = float(sys.argv[2])
while time.monotonic() < start_at:  # one clock for all processes: they start together
    pass
first = time.monotonic()
allowed = sum(1 for _ in range(20_000) if buckets.take(99, 300) == 0)
print(allowed, first, time.monotonic())
"""


def test_processes_racing_on_one_key_let_through_exactly_the_limit(tmp_path: Path) -> None:
    start_at = time.monotonic() + 3.0  # after the three have imported
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(tmp_path / "t.buckets"), str(start_at)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    runs = [p.communicate(timeout=60)[0].split() for p in procs]
    counts = [int(r[0]) for r in runs]
    spans = sorted((float(r[1]), float(r[2])) for r in runs)
    # 60,000 attempts racing for the 300-token burst plus what refills meanwhile (5 a second):
    # per-process buckets would have let 900 through.
    assert 300 <= sum(counts) <= 320, counts
    assert any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)), spans  # they did race


def test_a_full_neighbourhood_reuses_the_slot_refilled_longest_ago(tmp_path: Path, clock: Clock) -> None:
    buckets = SharedBuckets(tmp_path / "t.buckets", slots=4)
    for key in (1, 2, 3, 4):
        assert _allowed(buckets, key, 2, 2) == 2  # each bucket emptied
        clock.now += 1.0
    # Key 5 finds no free slot: it takes key 1's (the stalest) and starts full.
    assert _allowed(buckets, 5, 2, 3) == 2
    # The others still remember they are empty; key 1 lost its record, so it starts full again.
    assert _allowed(buckets, 3, 2, 1) == 0
    assert _allowed(buckets, 1, 2, 3) == 2


def test_a_table_from_before_a_reboot_counts_as_full(tmp_path: Path, clock: Clock) -> None:
    buckets = SharedBuckets(tmp_path / "t.buckets")
    assert _allowed(buckets, 3, 2, 3) == 2
    clock.now = 5.0  # the monotonic clock restarted
    assert _allowed(buckets, 3, 2, 3) == 2


def test_fingerprints_and_table_names() -> None:
    a = Principal(1, "app", "viewer")
    assert fingerprint(a) == fingerprint(Principal(1, "app", "viewer"))
    assert fingerprint(a) != fingerprint(Principal(1, "app", "reporter"))  # a recreated database's key 1
    assert fingerprint(a) != 0  # 0 marks a free slot
    base = Path("/tmp/x")
    assert table_path(base, "postgresql://h/a") != table_path(base, "postgresql://h/b")
    assert table_path(base, "postgresql://h/a").parent == base / "rate-limits"


def test_the_app_counts_in_the_table_of_its_database(app, client) -> None:  # type: ignore[no-untyped-def]
    limiter = app.state.admission.limiter
    assert isinstance(limiter, SharedBuckets)
    url = app.state.engine.url.render_as_string(hide_password=True)
    assert limiter.path == table_path(app.state.settings.var_dir, url)
    assert limiter.path.exists()
