"""Who used my data: each citizen sees the deliveries that included them, and nobody else's."""

from __future__ import annotations

import pytest
from django.test import Client

from broker.audit import sequencer
from broker.models import Organisation, User
from consent.models import ConsentModule
from sharing import delivery
from sharing.models import Agreement, Dataset
from tests.conftest import client_for
from tests.sharing.conftest import RESEARCH, agreement, consent_to, grant_for, link, module, trips, trips_csv, upload

__all__ = ["agreement", "module", "trips"]  # fixtures used below
pytestmark = pytest.mark.django_db


@pytest.fixture
def a_read(
    holder: Organisation, holder_admin: User, agreement: Agreement, trips: Dataset, module: ConsentModule,
    alice: User, bob: User, data_user: Organisation, user_admin: User,
) -> delivery.Read:  # fmt: skip
    upload(
        holder_admin, trips, trips_csv([("T-A", "2026-03-01", "Gare", "Campus", 1), ("T-B", "2026-03-01", "A", "B", 1)])
    )
    link(alice, holder, "T-A")
    link(bob, holder, "T-B")
    consent_to(alice, module, RESEARCH)
    return delivery.open_read(grant_for(user_admin, data_user, trips))


def test_the_api_lists_the_citizen_s_uses_only(a_read: delivery.Read, alice: User, bob: User) -> None:
    (use,) = client_for(alice).get("/api/v1/me/accesses/").json()["results"]
    assert use["delivery"] == str(a_read.delivery.pk)
    assert (use["organisation"], use["purpose"], use["records"]) == ("marlieux", RESEARCH, 1)
    assert client_for(bob).get("/api/v1/me/accesses/").json()["results"] == []


def test_organisations_and_strangers_cannot_list_accesses(a_read: delivery.Read, user_admin: User) -> None:
    assert client_for(user_admin).get("/api/v1/me/accesses/").status_code == 403
    assert Client().get("/api/v1/me/accesses/").status_code in (401, 403)


def test_the_portal_shows_each_use_with_its_proof_to_its_citizen_only(
    a_read: delivery.Read, alice: User, bob: User
) -> None:
    sequencer.sequence()
    page = client_for(alice).get(f"/me/accesses/{a_read.delivery.pk}/")
    assert page.status_code == 200
    assert "Included in the signed log" in page.content.decode()
    assert "Ville de Marlieux" in client_for(alice).get("/me/accesses/").content.decode()
    assert client_for(bob).get(f"/me/accesses/{a_read.delivery.pk}/").status_code == 404
    assert "Ville de Marlieux" not in client_for(bob).get("/me/accesses/").content.decode()
