"""A reference federated holder API, as a holder would write it with tiers_connector: no Django in it.

`GET /records` checks the data user's token (audience: this service's base
URL, which is the dataset's api_base_url), asks Tiers which of its subjects the
grant may include right now, answers those subjects' records as JSON Lines
(granted fields only, `subject_pseudonym` instead of the customer reference),
and reports the delivery to Tiers with a signed access receipt.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tiers_connector import InvalidToken, TiersClient, TiersError, TiersUnavailable, TokenVerifier

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test output."""


class HolderService:
    """Volta's federated API: a few meter readings per customer reference, served through Tiers' rules."""

    def __init__(self, records: dict[str, list[dict[str, Any]]], *, introspect: bool = False) -> None:
        self.records = records
        self.introspect = introspect
        self.tiers: TiersClient | None = None
        self.verifier: TokenVerifier | None = None
        self.refusals: list[str] = []  # why tokens were refused, as the service would log it
        self.receipts: list[str] = []  # the receipts sent to Tiers, as compact JWS
        self._server = make_server("127.0.0.1", 0, self.app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="holder-service", daemon=True)

    def connect(self, tiers: TiersClient) -> None:
        """Use this client of Tiers; data users' tokens must name this service's URL as audience."""
        self.tiers = tiers
        self.verifier = tiers.verifier(self.url)

    def start(self) -> HolderService:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.tiers is not None:
            self.tiers.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- the WSGI application ---------------------------------------------------------------------

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/records":
            return _problem(start_response, 404, "Not found", "This API serves GET /records.")
        if environ.get("REQUEST_METHOD") != "GET":
            return _problem(start_response, 405, "Method not allowed", "GET only.")
        if self.tiers is None or self.verifier is None:
            return _problem(start_response, 503, "Service unavailable", "Not connected to Tiers yet.")
        try:
            grant = self.verifier.verify(environ.get("HTTP_AUTHORIZATION", ""), introspect=self.introspect)
        except InvalidToken as exc:
            self.refusals.append(exc.reason)
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/problem+json"),
                    ("WWW-Authenticate", 'Bearer realm="volta", error="invalid_token"'),
                ],
            )
            return [_json({"title": "Unauthorized", "status": 401, "detail": "The access token is not valid."})]
        try:
            return self._deliver(grant.grant_id, grant.organisation, start_response)
        except TiersUnavailable:
            return _problem(start_response, 503, "Service unavailable", "Consent cannot be checked now.")
        except TiersError as exc:
            # Tiers refused the decision (the grant ended, or is not on our data): deliver nothing.
            status = 404 if exc.status == 404 else 403
            return _problem(start_response, status, "Not delivered", exc.detail)

    def _deliver(self, grant_id: str, organisation: str, start_response: StartResponse) -> Iterable[bytes]:
        assert self.tiers is not None
        decision = self.tiers.decide(grant_id, self.records)
        if decision.organisation != organisation:
            return _problem(start_response, 403, "Not delivered", "The grant is another organisation's.")
        included = decision.included
        lines = [
            _json({"subject_pseudonym": pseudonym, **{name: row.get(name) for name in decision.fields}})
            for ref, pseudonym in included.items()
            for row in self.records[ref]
        ]
        headers = [("Content-Type", "application/x-ndjson; charset=utf-8"), ("Cache-Control", "no-store")]
        delivered = {ref: len(self.records[ref]) for ref in included}
        if delivered:
            # Reported before a byte goes out, as Tiers records its hosted reads: nothing unaccounted for
            # leaves. Tiers refuses a receipt naming no subject, so an empty read is not reported.
            receipt = self.tiers.receipt(grant_id, delivered)
            self.receipts.append(receipt)
            headers.append(("Tiers-Delivery", self.tiers.submit_receipt(receipt).delivery))
        start_response("200 OK", headers)
        return lines


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _problem(start_response: StartResponse, status: int, title: str, detail: str) -> list[bytes]:
    reasons = {403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
    start_response(f"{status} {reasons[status]}", [("Content-Type", "application/problem+json")])
    return [_json({"title": title, "status": status, "detail": detail})]
