"""A data user's or holder's webhook endpoint: verifies each SET, applies each event once, counts.

A threaded HTTP server on 127.0.0.1. Each POST to /hooks/<organisation> is verified with
`tiers_connector.receiver.EventReceiver` (signature against Tiers' /oauth/jwks, issuer,
audience, type) and deduplicated on its jti, as a real receiver must: a jti seen before
is acknowledged again and counted as a redelivery, never applied twice. A "duplicate
effect" is an event applied twice under two different jtis (the same change told twice),
which dedupe on jti cannot catch: that count must stay 0.

The scenarios can stop it (connections refused) and start it again on the same port, and
make it slow to answer the next delivery (it applies the event, then holds the answer).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tiers_connector.receiver import DuplicateEvent, EventReceiver, InvalidEvent


@dataclass
class Applied:
    jti: str
    organisation: str
    type: str
    payload: dict[str, Any]
    at: float


@dataclass
class Tally:
    applied: dict[str, Applied] = field(default_factory=dict)
    effects: dict[str, str] = field(default_factory=dict)  # effect key -> first jti
    redeliveries: int = 0
    duplicate_effects: int = 0
    refused: list[str] = field(default_factory=list)


class Receiver:
    def __init__(self, port: int) -> None:
        self.port = port
        self.tally = Tally()
        self._lock = threading.Lock()
        self._receivers: dict[str, EventReceiver] = {}
        self._server: ThreadingHTTPServer | None = None
        self._hold_seconds = 0.0
        self.holding = threading.Event()  # set when a held delivery arrived

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self, issuer: str) -> None:
        """Tiers' issuer (its base URL); keys are fetched from its /oauth/jwks."""
        self.issuer = issuer

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver.handle(self.path, body, self.headers.get("Content-Type", ""))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender died while we held the answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fault-receiver", daemon=True).start()

    def stop(self) -> None:
        """Refuse connections from now on (the endpoint is down)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def hold_next(self, seconds: float) -> None:
        """Apply the next delivery at once but answer it only after `seconds`."""
        self.holding.clear()
        self._hold_seconds = seconds

    def _receiver_for(self, path: str) -> EventReceiver:
        with self._lock:
            if path not in self._receivers:
                self._receivers[path] = EventReceiver(
                    self.issuer, f"{self.issuer}/oauth/jwks", f"{self.base_url}{path}", jwks_refresh_interval=1.0
                )
            return self._receivers[path]

    def handle(self, path: str, body: bytes, content_type: str) -> int:
        try:
            event = self._receiver_for(path).receive(body, content_type)
        except DuplicateEvent:
            with self._lock:
                self.tally.redeliveries += 1
            return 202
        except InvalidEvent as refused:
            with self._lock:
                self.tally.refused.append(refused.reason)
            return 400
        organisation = path.rsplit("/", 1)[-1]
        effect = json.dumps([organisation, event.type, event.payload], sort_keys=True)
        with self._lock:
            self.tally.applied[event.jti] = Applied(
                event.jti, organisation, event.type, event.payload, time.monotonic()
            )
            if effect in self.tally.effects:
                self.tally.duplicate_effects += 1
            else:
                self.tally.effects[effect] = event.jti
            hold, self._hold_seconds = self._hold_seconds, 0.0
        if hold:
            self.holding.set()
            time.sleep(hold)
        return 202

    def applied(self, jtis: set[str]) -> list[Applied]:
        with self._lock:
            return [self.tally.applied[jti] for jti in jtis if jti in self.tally.applied]
