"""A tiny HTTP receiver on 127.0.0.1 for the webhook tests: records every request and answers
with the statuses of a script (then 200), optionally after a delay."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gis.outbound import signing


@dataclass
class Hit:
    at: float  # time.monotonic() when the request arrived
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def verified(self, secret: str) -> bool:
        return signing.verify(secret, self.headers, self.body)

    @property
    def delivery(self) -> str:
        return self.headers[signing.DELIVERY_HEADER.lower()]


class Receiver:
    def __init__(self, script: list[int] | None = None, delay_s: float = 0.0) -> None:
        self.hits: list[Hit] = []
        self.script = list(script or [])
        self.delay_s = delay_s
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.monotonic()
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver._lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    receiver.hits.append(Hit(arrived, {k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up waiting (a timeout test)
                    self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def ok_hits(self) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if 200 <= h.answered < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
