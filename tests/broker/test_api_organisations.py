"""The public register and /organisations/me, tried by each persona."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from broker.models import Membership, Organisation
from tests.conftest import client_for
from tests.factories import MembershipFactory, OrganisationFactory

ME = "/api/v1/organisations/me"


@pytest.mark.django_db
def test_public_register_lists_verified_organisations_only_without_private_fields(api: APIClient) -> None:
    verified = OrganisationFactory(slug="verified-org")
    OrganisationFactory(slug="pending-org", verification_state="pending", verified_at=None)
    response = api.get("/api/v1/organisations/")
    assert response.status_code == 200
    items = response.json()["results"]
    assert [item["slug"] for item in items] == [verified.slug]
    assert "contact_email" not in items[0]
    assert "members" not in items[0]


def test_member_sees_their_organisation_with_its_members(holder_admin, holder) -> None:  # type: ignore[no-untyped-def]
    MembershipFactory(user__username="rita", organisation=holder, role=Membership.Role.REVIEWER)
    body = client_for(holder_admin).get(ME).json()
    assert body["slug"] == holder.slug
    assert body["contact_email"] == holder.contact_email
    assert body["members"] == [
        {"username": "hana", "role": "admin"},
        {"username": "rita", "role": "reviewer"},
    ]


def test_member_cannot_read_another_organisation_by_naming_it(holder_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    response = client_for(holder_admin).get(ME, {"organisation": data_user.slug})
    assert response.status_code == 403
    assert data_user.contact_email not in response.content.decode()


def test_member_cannot_change_another_organisation(holder_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    response = client_for(holder_admin).patch(
        f"{ME}?organisation={data_user.slug}", {"contact_email": "evil@example.org"}, format="json"
    )
    assert response.status_code == 403
    data_user.refresh_from_db()
    assert data_user.contact_email != "evil@example.org"


def test_admin_changes_their_organisation_contact(holder_admin, holder) -> None:  # type: ignore[no-untyped-def]
    response = client_for(holder_admin).patch(ME, {"contact_email": "new@volta.example"}, format="json")
    assert response.status_code == 200
    assert response.json()["contact_email"] == "new@volta.example"
    holder.refresh_from_db()
    assert holder.contact_email == "new@volta.example"


def test_steward_may_read_but_not_change_their_organisation(holder) -> None:  # type: ignore[no-untyped-def]
    steward = MembershipFactory(organisation=holder, role=Membership.Role.DATA_STEWARD).user
    client = client_for(steward)
    assert client.get(ME).status_code == 200
    response = client.patch(ME, {"name": "Renamed"}, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    holder.refresh_from_db()
    assert holder.name == "Volta Énergie"


def test_member_of_several_organisations_must_name_one(holder_admin, data_user) -> None:  # type: ignore[no-untyped-def]
    MembershipFactory(user=holder_admin, organisation=data_user, role=Membership.Role.REVIEWER)
    client = client_for(holder_admin)
    response = client.get(ME)
    assert response.status_code == 422
    assert sorted(response.json()["choices"]) == sorted([data_user.slug, "volta"])
    assert client.get(ME, {"organisation": data_user.slug}).json()["slug"] == data_user.slug


@pytest.mark.parametrize("persona", ["alice", "stranger", "operator"])
def test_people_without_membership_have_no_organisation(request, persona) -> None:  # type: ignore[no-untyped-def]
    response = client_for(request.getfixturevalue(persona)).get(ME)
    assert response.status_code == 403
    assert response.json()["detail"] == "You are not a member of any organisation."


def test_organisation_is_never_verified_through_the_api(holder_admin, holder) -> None:  # type: ignore[no-untyped-def]
    holder.verification_state = Organisation.Verification.PENDING
    holder.verified_at = None
    holder.save()
    client_for(holder_admin).patch(ME, {"verification_state": "verified"}, format="json")
    holder.refresh_from_db()
    assert holder.verification_state == Organisation.Verification.PENDING
