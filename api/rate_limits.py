"""Per-key token buckets, shared by every worker process of the API on this machine.

uvicorn runs the API in several processes. Buckets kept in each process would let a key through
once per worker (twice its limit with the demo's two workers), so the buckets live in a small
file that every worker maps into memory: a fixed table of slots (key fingerprint, tokens, time of
the last refill). Times are ``time.monotonic()``, which on Linux is one clock for all processes.
An exclusive ``flock`` around each read-modify-write keeps the workers from racing; a thread lock
does the same inside a process, since a file lock is held per open file, not per thread. A take
costs a few microseconds, against a database round trip for a shared store in PostgreSQL.

The file is named after the database the API serves (key ids are per database), so servers on
the same database share their limits and a test database does not inherit the demo's.
A bucket holds up to ``limit`` tokens and refills at ``limit`` a minute. When every slot of a
key's neighbourhood (16 slots) is taken, the one refilled longest ago is reused: a bucket idle
for a minute is full again, so forgetting it loses nothing; only with more than 16 keys busy in
one neighbourhood within the same minute could a key get a fresh bucket early.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
from pathlib import Path

from gis.people.keys import Principal

_SLOT = struct.Struct("<Qdd")  # fingerprint (0 = free), tokens, last refill
SLOTS = 8192
PROBES = 16


def fingerprint(principal: Principal) -> int:
    """A 64-bit id of the key: its id, name and role (ids alone recur when a database is recreated)."""
    text = f"{principal.key_id}\0{principal.name}\0{principal.role}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") or 1


def table_path(var_dir: Path, database: str) -> Path:
    digest = hashlib.blake2b(database.encode(), digest_size=8).hexdigest()
    return var_dir / "rate-limits" / f"{digest}.buckets"


class LocalBuckets:
    """The same buckets in this process only: for one-process servers and when no file can be used."""

    def __init__(self) -> None:
        self._state: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: int, limit: int) -> float:
        with self._lock:
            now = time.monotonic()
            tokens, last = self._state.get(key, (float(limit), now))
            tokens, wait = _take(tokens, last, now, limit)
            self._state[key] = (tokens, now)
        return wait

    def refund(self, key: int, limit: int) -> None:
        with self._lock:
            state = self._state.get(key)
            if state is not None:
                self._state[key] = (min(float(limit), state[0] + 1.0), state[1])

    def reset(self) -> None:
        with self._lock:
            self._state.clear()


def _take(tokens: float, last: float, now: float, limit: int) -> tuple[float, float]:
    """(tokens left, seconds to wait: 0 when a token was taken)."""
    rate = limit / 60.0
    tokens = min(float(limit), tokens + max(0.0, now - last) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


class SharedBuckets:
    """The buckets in a file mapped by every worker; see the module docstring."""

    def __init__(self, path: Path, slots: int = SLOTS):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.slots = slots
        size = _SLOT.size * slots
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with self._locked():
                if os.fstat(self._fd).st_size != size:
                    os.ftruncate(self._fd, size)  # new file (zeros: all free) or another slot count
            self._map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise
        self._thread_lock = threading.Lock()

    def _locked(self) -> _FileLock:
        return _FileLock(self._fd)

    def _slot(self, key: int) -> int:
        """Byte offset of the key's slot: its own, else a free one, else the stalest nearby."""
        start = key % self.slots
        stalest, stalest_at = -1, float("inf")
        for i in range(PROBES):
            offset = ((start + i) % self.slots) * _SLOT.size
            owner, _, last = _SLOT.unpack_from(self._map, offset)
            if owner == key or owner == 0:
                return offset
            if last < stalest_at:
                stalest, stalest_at = offset, last
        return stalest

    def take(self, key: int, limit: int) -> float:
        with self._thread_lock, self._locked():
            # Read the clock holding the lock: a time read before waiting for it can be older than
            # the one the previous holder stored, which would look like a reboot.
            now = time.monotonic()
            offset = self._slot(key)
            owner, tokens, last = _SLOT.unpack_from(self._map, offset)
            if owner != key or last > now:  # a new bucket (or one from before a reboot): full
                tokens, last = float(limit), now
            tokens, wait = _take(tokens, last, now, limit)
            _SLOT.pack_into(self._map, offset, key, tokens, now)
        return wait

    def refund(self, key: int, limit: int) -> None:
        with self._thread_lock, self._locked():
            offset = self._slot(key)
            owner, tokens, last = _SLOT.unpack_from(self._map, offset)
            if owner == key:
                _SLOT.pack_into(self._map, offset, key, min(float(limit), tokens + 1.0), last)

    def reset(self) -> None:
        with self._thread_lock, self._locked():
            self._map[:] = bytes(len(self._map))


class _FileLock:
    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
