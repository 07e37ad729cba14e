"""Listening for boundary publications (``NOTIFY gridmap_boundaries``) in a background thread.

Each process holding in-memory caches (``gis.spatial.lookup.LookupService``) runs one ``Listener`` with
its own psycopg connection in autocommit mode doing ``LISTEN``. Every notification calls
``on_change(payload)``. Notifications sent while the connection was down are lost, so every
(re)connect calls ``on_change(None)`` too: after a database restart the caches are rebuilt from
what is there now. A dropped connection is retried with a capped back-off until ``stop()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL, make_url

from gis.core.vocab import BOUNDARIES_CHANNEL

CHANNEL = BOUNDARIES_CHANNEL
log = logging.getLogger("gridmap.notify")


def conninfo_from_url(url: str | URL) -> str:
    """A libpq connection string for a SQLAlchemy URL (drops the +driver part)."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """``LISTEN`` on ``channel`` in a daemon thread; ``connected`` is set while listening."""

    def __init__(
        self,
        conninfo: str,
        on_change: Callable[[str | None], None],
        *,
        channel: str = CHANNEL,
        poll_s: float = 0.5,
        max_backoff_s: float = 5.0,
        on_state: Callable[[bool], None] | None = None,
    ):
        self.conninfo = conninfo
        self.on_change = on_change
        self.channel = channel
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self.on_state = on_state
        self.connected = threading.Event()
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"listen-{self.channel}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _set_state(self, up: bool) -> None:
        if up:
            self.connected.set()
        else:
            self.connected.clear()
        if self.on_state is not None:
            self.on_state(up)

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                self._listen()
                backoff = 0.2
            except psycopg.Error as exc:
                if self._stop.is_set():
                    break
                log.warning("listener on %s lost its connection (%s); retrying in %.1fs", self.channel, exc, backoff)
            finally:
                if self.connected.is_set():
                    self._set_state(False)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _deliver(self, payload: str | None) -> None:
        # A failing callback must not end the thread: later notifications still need delivering.
        try:
            self.on_change(payload)
        except Exception:
            log.exception("handling a notification on %s failed", self.channel)

    def _listen(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
            # The channel name is our own constant, not user input.
            conn.execute(f"LISTEN {self.channel}")
            self.reconnects += 1
            self._set_state(True)
            self._deliver(None)
            last_ping = time.monotonic()
            while not self._stop.is_set():
                for note in conn.notifies(timeout=self.poll_s):
                    self._deliver(note.payload)
                # A half-open TCP link never raises by itself; a cheap query now and then does.
                if time.monotonic() - last_ping > 30:
                    conn.execute("SELECT 1")
                    last_ping = time.monotonic()
