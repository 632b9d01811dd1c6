"""Webhook fixtures: the sharing world (a holder, its trips, an agreement), endpoints, and a live receiver."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from broker import keys
from broker.models import Membership, Organisation, User, WebhookEndpoint
from consent.models import ConsentModule, ConsentRecord
from sharing.models import Dataset, Grant
from tests.factories import MembershipFactory, OrganisationFactory
from tests.sharing.conftest import (  # noqa: F401 (fixtures)
    PUBLIC_BENEFIT,
    RESEARCH,
    agreement,
    consent_to,
    grant_for,
    lab,
    lab_admin,
    link,
    module,
    trips,
)


def endpoint_for(organisation: Organisation, url: str = "https://hooks.example.org/tiers") -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(organisation=organisation, url=url, created_by="system")


@pytest.fixture
def other_holder(db: None) -> Organisation:
    """A second holder, with nothing to do with the first one's citizens."""
    return OrganisationFactory(slug="aqua", name="Aqua Services", kind=Organisation.Kind.HOLDER)


@pytest.fixture
def city(db: None) -> Organisation:
    """A data user with no grant at all."""
    return OrganisationFactory(
        slug="bourg",
        name="Bourg",
        kind=Organisation.Kind.USER,
        recipient_category=Organisation.RecipientCategory.PUBLIC_AUTHORITY,
    )


@pytest.fixture
def city_admin(city: Organisation) -> User:
    return MembershipFactory(user__username="cyril", organisation=city, role=Membership.Role.ADMIN).user


@dataclass
class World:
    """Alice linked with the holder and consenting to research; the lab holds a research grant."""

    alice: User
    consent: ConsentRecord
    grant: Grant
    holder: Organisation
    lab: Organisation


@pytest.fixture
def world(
    alice: User,
    holder: Organisation,
    lab: Organisation,  # noqa: F811
    lab_admin: User,  # noqa: F811
    trips: Dataset,  # noqa: F811
    module: ConsentModule,  # noqa: F811
    agreement: Any,  # noqa: F811
) -> World:
    link(alice, holder, "CUST-0001")
    (record,) = consent_to(alice, module, RESEARCH)
    grant = grant_for(lab_admin, lab, trips)
    return World(alice=alice, consent=record, grant=grant, holder=holder, lab=lab)


# --- a live receiver on 127.0.0.1 ----------------------------------------------------------------------


@dataclass
class Receiver:
    """An HTTP server in a thread that answers each POST with the next status of `statuses` (then 200)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/tiers/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class JwksSession:
    """What EventReceiver fetches the JWK Set with: Tiers' own published set, without a web server."""

    def get(self, url: str, **kwargs: Any) -> Any:
        published = keys.jwks()

        class Answer:
            status_code = 200

            def raise_for_status(self) -> None:
                pass

            def json(self) -> dict[str, Any]:
                return published

        return Answer()
