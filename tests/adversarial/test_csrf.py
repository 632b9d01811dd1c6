"""Every portal URL refuses a POST without a CSRF token, for a logged-in person, and changes nothing.

The URL patterns come from the resolver, so a new form is covered the day it is added. The
API (its own session check is DRF's, tested in tests/broker), the OAuth endpoints (no cookies),
the admin (Django's own) and static files are outside this file.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from broker.models import AuditEntry, User
from broker.security.twofactor import VERIFIED_SESSION_KEY
from consent.models import ConsentRecord, IdentityLink
from sharing.models import Dataset
from tests.adversarial.world import World, build, rolled_back

OUT_OF_SCOPE = ("api/", "admin/", "oauth/", ".well-known/", "healthz", "readyz", "metrics", "static/")


def _routes() -> Iterator[tuple[str, Any]]:
    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, Any]]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p

    seen = set()
    for route, pattern in walk(get_resolver().url_patterns, ""):
        if route.startswith(OUT_OF_SCOPE) or route.startswith("^") or route in seen:
            continue
        if getattr(pattern.callback, "csrf_exempt", False):
            continue
        seen.add(route)
        yield route, pattern


ROUTES = sorted(route for route, _ in _routes())


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    with rolled_back(django_db_blocker):
        yield build()


def _values(world: World) -> dict[str, str]:
    """A real value for each URL parameter name the portal uses (Volta's and alice's objects)."""
    alice = world.users["alice"]
    link = IdentityLink.objects.filter(citizen=alice).first()
    return {
        "slug": "volta",
        "name": "test",
        "client_id": world.objects["client"]["volta"],
        "endpoint_id": world.objects["endpoint"]["volta"],
        "delivery_id": world.objects["delivery"]["volta"],
        "dataset_id": world.objects["dataset"]["volta"],
        "agreement_id": world.objects["draft"]["volta"],
        "request_id": world.objects["request"]["volta"],
        "grant_id": world.objects["grant"]["volta"],
        "consent_id": world.objects["consent"]["alice"],
        "module_id": world.objects["module"]["alice"],
        "link_id": str(link.pk if link else 1),
        "incident_id": str(uuid.uuid4()),
        "action": "withdraw",
        "uidb64": "MQ",
        "token": "set-password",
    }


def _url(route: str, values: dict[str, str]) -> str:
    import re

    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)


def _person(world: World, route: str) -> User:
    """Someone the page is for: its forms are what an attacker would aim at them."""
    if route.startswith("operator/"):
        return world.users["olga"]
    if route.startswith(("org/", "join/")):
        return world.users["hana"]
    return world.users["alice"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_post_without_csrf_token_is_refused(world: World, db: None, route: str) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(_person(world, route))
    session = client.session
    session[VERIFIED_SESSION_KEY] = True
    session.save()
    before = AuditEntry.objects.count()
    response = client.post(_url(route, _values(world)), {"reason": "forged", "name": "forged", "code": "0000"})
    assert response.status_code == 403, (route, response.status_code)
    assert b"CSRF" in response.content, response.content[:300]
    assert AuditEntry.objects.count() == before


def test_the_portal_has_forms_to_check() -> None:
    assert len(ROUTES) > 40, ROUTES


@pytest.mark.parametrize(
    ("route", "user", "count", "proven"),
    [
        ("org/volta/datasets/new", "hana", lambda: Dataset.objects.count(), False),
        (
            "me/consents/<consent_id>/<action>/",
            "alice",
            lambda: ConsentRecord.objects.filter(state=ConsentRecord.State.WITHDRAWN).count(),
            True,
        ),
        (
            "me/links/<link_id>/unlink",
            "alice",
            lambda: IdentityLink.objects.filter(unlinked_at__isnull=True).count(),
            True,
        ),
    ],
)
def test_a_forged_post_changes_no_row(world: World, db: None, route: str, user: str, count: Any, proven: bool) -> None:
    """What the same POST does with its token, it does not do without one."""
    values = _values(world)
    form = {
        "slug": "forged",
        "title": "Forged",
        "mode": "hosted",
        "table_schema": '{"fields": [{"name": "a", "type": "string"}]}',
    }
    before = count()
    forged = Client(enforce_csrf_checks=True)
    forged.force_login(world.users[user])
    assert forged.post(_url(route, values), form).status_code == 403
    assert count() == before
    if proven:  # the same POST, with its token, does change the row: the count above means something
        honest = Client()
        honest.force_login(world.users[user])
        honest.post(_url(route, values), form)
        assert count() != before
