"""A citizen who also works for an organisation or for Tiers leaves those roles before erasing the account."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from broker.models import AuditEntry, Invitation, Membership, Organisation, OutboxEvent, User
from consent.models import ConsentModule, ConsentRecord, IdentityLink
from tests.conftest import client_for
from tests.consent.test_account import held_about
from tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_consents(alice: User, alice_linked: IdentityLink, module: ConsentModule) -> list[ConsentRecord]:
    from consent import services

    return services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])


@pytest.fixture
def alice_admin(alice: User, holder: Organisation) -> User:
    """Alice also administers a holder, and once invited a colleague."""
    MembershipFactory(user=alice, organisation=holder, role=Membership.Role.ADMIN)
    Invitation.objects.create(
        organisation=holder,
        email="colleague@example.org",
        role=Membership.Role.REVIEWER,
        invited_by=alice,
        token_hash="0" * 64,
        expires_at=timezone.now() + datetime.timedelta(days=7),
    )
    return alice


def test_the_portal_asks_a_member_to_leave_first_and_changes_nothing(
    alice_admin: User, alice_consents: list[ConsentRecord]
) -> None:
    before, entries = held_about(alice_admin.pk), AuditEntry.objects.count()
    client = Client()
    client.force_login(alice_admin)
    response = client.post("/me/account/delete", {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 409
    assert "leave those roles first" in response.content.decode()
    assert "log in again" not in response.content.decode()  # the one reason, not another besides
    assert held_about(alice_admin.pk) == before
    assert AuditEntry.objects.count() == entries
    assert not OutboxEvent.objects.filter(topic="consent.withdrawn").exists()
    assert Membership.objects.filter(user=alice_admin).exists()


def test_the_api_answers_409_to_a_member_and_changes_nothing(
    alice_admin: User, alice_consents: list[ConsentRecord]
) -> None:
    before = held_about(alice_admin.pk)
    response = client_for(alice_admin).post("/api/v1/me/erasure", {"password": PASSWORD}, format="json")
    assert response.status_code == 409
    assert response["Content-Type"].startswith("application/problem+json")
    assert "leave those roles first" in response.json()["detail"]
    assert held_about(alice_admin.pk) == before


def test_a_citizen_who_is_also_staff_is_asked_to_leave_first(alice: User, alice_consents: list[ConsentRecord]) -> None:
    User.objects.filter(pk=alice.pk).update(is_staff=True)
    response = client_for(User.objects.get(pk=alice.pk)).post(
        "/api/v1/me/erasure", {"password": PASSWORD}, format="json"
    )
    assert response.status_code == 409, response.status_code
    assert User.objects.filter(pk=alice.pk).exists()
