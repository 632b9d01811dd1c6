"""Onboarding: a person applies, an operator verifies or rejects, the admin invites, the invitee joins."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from broker import outbox, services
from broker.errors import Conflict, Forbidden, InvalidInput, NotFound
from broker.models import AuditBody, Invitation, Membership, Organisation, OutboxEvent, User
from tests.conftest import client_for
from tests.factories import MembershipFactory, OrganisationFactory, UserFactory

pytestmark = pytest.mark.django_db

APPLICATION: dict[str, Any] = {
    "name": "Régie des Eaux du Val",
    "slug": "eaux-du-val",
    "identifier_scheme": "siren",
    "legal_identifier": "732 829 320",
    "country": "fr",
    "kind": "both",
    "recipient_category": "public-authority",
    "contact_email": "dpo@eaux-du-val.example",
}


def events(verb: str) -> list[dict[str, Any]]:
    return [json.loads(bytes(body.canonical)) for body in AuditBody.objects.filter(verb=verb).order_by("entry_id")]


def deliver(topic: str) -> None:
    """Run what a worker would for the topic's pending events (tests do not commit, so nothing relays)."""
    for event in OutboxEvent.objects.filter(topic=topic, handled_at__isnull=True):
        outbox.dispatch(event.pk)


def browser(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def applicant(db: None) -> User:
    return UserFactory(username="amir", email="amir@eaux-du-val.example")


@pytest.fixture
def invitee(db: None) -> User:
    return UserFactory(username="ines", email="ines@eaux-du-val.example")


# --- identifiers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("siren", ["732829320", "552081317", "213800014", "180089013"])
def test_a_siren_with_a_valid_check_digit_passes(siren: str) -> None:
    assert services.siren_is_valid(siren)


@pytest.mark.parametrize("siren", ["732829321", "12345678", "1234567890", "73282932A", ""])
def test_a_siren_with_a_wrong_check_digit_or_length_fails(siren: str) -> None:
    assert not services.siren_is_valid(siren)


def test_an_lei_is_checked_with_iso_7064() -> None:
    assert services.lei_is_valid("5493001KJTIIGC8Y1R12")
    assert not services.lei_is_valid("5493001KJTIIGC8Y1R13")


# --- the whole flow ------------------------------------------------------------------------------


def test_an_organisation_joins_from_application_to_a_second_member(  # type: ignore[no-untyped-def]
    applicant, invitee, operator
) -> None:
    # A logged-in person applies; the organisation waits, with them as its admin.
    response = browser(applicant).post("/join/", APPLICATION)
    assert response.status_code == 302
    organisation = Organisation.objects.get(slug="eaux-du-val")
    assert response["Location"] == f"/org/{organisation.slug}/"
    assert organisation.verification_state == Organisation.Verification.PENDING
    assert organisation.legal_identifier == "732829320"
    assert organisation.country == "FR"
    assert Membership.objects.get(organisation=organisation).user == applicant
    [applied] = events("organisation.applied")
    assert applied["actor"] == f"user:{applicant.pk}"
    assert applied["details"]["legal_identifier"] == "siren:732829320"
    assert not organisation in Organisation.objects.verified()  # noqa: E713 (reads as a sentence)

    # Before verification, the admin cannot invite yet.
    with pytest.raises(Conflict):
        services.invitation_send(actor=applicant, organisation=organisation, email=invitee.email, role="reviewer")

    # An operator verifies it from the workspace; the contact is told.
    assert browser(operator).post(f"/operator/organisations/{organisation.slug}/verify").status_code == 302
    organisation.refresh_from_db()
    assert organisation.is_verified
    deliver("organisation.verified")
    assert mail.outbox[-1].to == [APPLICATION["contact_email"]]

    # The admin invites a colleague as data steward from the members page.
    admin_page = browser(applicant)
    response = admin_page.post(f"/join/{organisation.slug}/members/", {"email": invitee.email, "role": "data_steward"})
    assert response.status_code == 302
    invitation = Invitation.objects.get(organisation=organisation)
    assert invitation.expires_at - invitation.created_at == datetime.timedelta(days=7)
    deliver("invitation.sent")
    message = mail.outbox[-1]
    assert message.to == [invitee.email]
    token = re.search(r"/join/invitations/(tinv_[\w-]+)/", message.body).group(1)  # type: ignore[union-attr]
    assert invitation.token_hash == services.invitation_token_hash(token)
    assert token not in json.dumps(OutboxEvent.objects.get(topic="invitation.sent").payload)  # dropped once sent
    [sent] = events("invitation.sent")
    assert invitee.email not in json.dumps(sent)

    # The invitee opens the link, logged in, and accepts.
    page = browser(invitee)
    assert organisation.name in page.get(f"/join/invitations/{token}/").content.decode()
    response = page.post(f"/join/invitations/{token}/")
    assert response.status_code == 302
    assert response["Location"] == f"/org/{organisation.slug}/"
    assert Membership.objects.get(organisation=organisation, user=invitee).role == "data_steward"
    invitation.refresh_from_db()
    assert invitation.accepted_by == invitee
    [accepted] = events("invitation.accepted")
    assert accepted["details"] == {"invitation": invitation.pk, "user": f"user:{invitee.pk}", "role": "data_steward"}
    assert events("membership.role_set")[-1]["details"] == {"user": f"user:{invitee.pk}", "role": "data_steward"}
    # The members page shows both, and the invitation as accepted.
    html = admin_page.get(f"/join/{organisation.slug}/members/").content.decode()
    assert "ines" in html
    assert "accepted by ines" in html


def test_an_anonymous_visitor_is_sent_to_login_to_apply_or_accept() -> None:
    for path in ("/join/", "/join/invitations/tinv_whatever/"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_a_bad_siren_is_shown_on_the_form_and_nothing_is_created(applicant) -> None:  # type: ignore[no-untyped-def]
    response = browser(applicant).post("/join/", {**APPLICATION, "legal_identifier": "732829321"})
    assert response.status_code == 200
    assert "check digit" in response.content.decode()
    assert not Organisation.objects.filter(slug="eaux-du-val").exists()


def test_a_data_user_must_say_what_kind_of_recipient_it_is(applicant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as refused:
        services.organisation_apply(actor=applicant, **{**APPLICATION, "recipient_category": ""})
    assert refused.value.extensions["errors"][0]["field"] == "recipient_category"


# --- the API -------------------------------------------------------------------------------------


def test_applying_through_the_api_answers_201_with_the_pending_organisation(applicant) -> None:  # type: ignore[no-untyped-def]
    response = client_for(applicant).post("/api/v1/organisations/", APPLICATION, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "eaux-du-val"
    assert body["verification_state"] == "pending"
    assert Membership.objects.get(organisation__slug="eaux-du-val").user == applicant
    # Pending organisations stay out of the public register.
    assert "eaux-du-val" not in APIClient().get("/api/v1/organisations/").content.decode()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"legal_identifier": "732829321"}, "legal_identifier"),
        ({"country": "France"}, "country"),
        ({"kind": "broker"}, "kind"),
        ({"contact_email": "not an address"}, "contact_email"),
        ({"slug": "eaux du val"}, "slug"),
        ({"kind": "holder", "recipient_category": "research-body"}, "recipient_category"),
    ],
)
def test_bad_input_answers_a_422_problem_naming_the_field(applicant, change, field) -> None:  # type: ignore[no-untyped-def]
    response = client_for(applicant).post("/api/v1/organisations/", {**APPLICATION, **change}, format="json")
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert not Organisation.objects.filter(slug=APPLICATION["slug"]).exists()


@pytest.mark.parametrize(
    "duplicate", [{"slug": "volta"}, {"legal_identifier": "552081317", "slug": "other"}], ids=["slug", "identifier"]
)
def test_a_duplicate_slug_or_identifier_answers_409(applicant, duplicate) -> None:  # type: ignore[no-untyped-def]
    OrganisationFactory(slug="volta", legal_identifier="552081317")
    response = client_for(applicant).post("/api/v1/organisations/", {**APPLICATION, **duplicate}, format="json")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"


def test_an_anonymous_caller_cannot_apply_through_the_api() -> None:
    response = APIClient().post("/api/v1/organisations/", APPLICATION, format="json")
    assert response.status_code in (401, 403)
    assert not Organisation.objects.filter(slug=APPLICATION["slug"]).exists()


# --- rejection -----------------------------------------------------------------------------------


def test_an_operator_rejects_an_application_with_a_reason_told_to_its_contact(  # type: ignore[no-untyped-def]
    applicant, operator
) -> None:
    organisation = services.organisation_apply(actor=applicant, **APPLICATION)
    response = browser(operator).post(
        f"/operator/organisations/{organisation.slug}/reject", {"reason": "The SIREN belongs to another body."}
    )
    assert response.status_code == 302
    organisation.refresh_from_db()
    assert organisation.verification_state == Organisation.Verification.REJECTED
    assert organisation.state_reason == "The SIREN belongs to another body."
    [rejected] = events("organisation.rejected")
    assert rejected["details"] == {"reason": "The SIREN belongs to another body."}
    assert rejected["actor"] == f"operator:{operator.pk}"
    deliver("organisation.rejected")
    assert mail.outbox[-1].to == [APPLICATION["contact_email"]]
    assert "The SIREN belongs to another body." in mail.outbox[-1].body
    # Rejecting again changes nothing; a verified organisation is not "rejected".
    services.organisation_reject(actor=operator, organisation=organisation, reason="again")
    assert len(events("organisation.rejected")) == 1
    with pytest.raises(Conflict):
        services.organisation_reject(actor=operator, organisation=OrganisationFactory(), reason="no")


def test_a_rejection_needs_a_reason_and_an_operator(applicant, operator, holder_admin) -> None:  # type: ignore[no-untyped-def]
    organisation = services.organisation_apply(actor=applicant, **APPLICATION)
    with pytest.raises(InvalidInput):
        services.organisation_reject(actor=operator, organisation=organisation, reason="  ")
    with pytest.raises(Forbidden):  # its own admin sees it, but may not decide
        services.organisation_reject(actor=applicant, organisation=organisation, reason="self")
    with pytest.raises(NotFound):
        services.organisation_reject(actor=holder_admin, organisation=organisation, reason="rival")
    organisation.refresh_from_db()
    assert organisation.verification_state == Organisation.Verification.PENDING


# --- invitations ---------------------------------------------------------------------------------


def test_an_invitation_works_once(holder, holder_admin, invitee, stranger) -> None:  # type: ignore[no-untyped-def]
    _, token = services.invitation_send(actor=holder_admin, organisation=holder, email=invitee.email, role="reviewer")
    services.invitation_accept(user=invitee, token=token)
    with pytest.raises(Conflict):
        services.invitation_accept(user=stranger, token=token)
    response = browser(stranger).post(f"/join/invitations/{token}/")
    assert response.status_code == 200
    assert "works once" in response.content.decode()
    assert not Membership.objects.filter(user=stranger).exists()
    assert len(events("invitation.accepted")) == 1


def test_an_expired_invitation_is_refused(holder, holder_admin, invitee) -> None:  # type: ignore[no-untyped-def]
    invitation, token = services.invitation_send(
        actor=holder_admin, organisation=holder, email=invitee.email, role="admin"
    )
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    with pytest.raises(Conflict):
        services.invitation_accept(user=invitee, token=token)
    page = browser(invitee)
    assert "expired" in page.get(f"/join/invitations/{token}/").content.decode()
    page.post(f"/join/invitations/{token}/")
    assert not Membership.objects.filter(user=invitee).exists()


def test_an_unknown_token_is_not_found(invitee) -> None:  # type: ignore[no-untyped-def]
    assert browser(invitee).get("/join/invitations/tinv_forged/").status_code == 404
    with pytest.raises(NotFound):
        services.invitation_accept(user=invitee, token="tinv_forged")


def test_only_the_hash_of_the_token_is_stored(holder, holder_admin) -> None:  # type: ignore[no-untyped-def]
    invitation, token = services.invitation_send(
        actor=holder_admin, organisation=holder, email="x@example.org", role="reviewer"
    )
    assert token.startswith("tinv_")
    assert token not in json.dumps(list(Invitation.objects.values()), default=str)
    assert invitation.token_hash == services.invitation_token_hash(token)


def test_another_organisations_admin_cannot_invite_to_this_one(holder, user_admin) -> None:  # type: ignore[no-untyped-def]
    page = browser(user_admin)
    assert page.get(f"/join/{holder.slug}/members/").status_code == 404
    response = page.post(f"/join/{holder.slug}/members/", {"email": "mole@example.org", "role": "admin"})
    assert response.status_code == 404
    with pytest.raises(NotFound):
        services.invitation_send(actor=user_admin, organisation=holder, email="mole@example.org", role="admin")
    assert not Invitation.objects.exists()


def test_a_member_whose_role_is_too_weak_is_refused(holder) -> None:  # type: ignore[no-untyped-def]
    reviewer = MembershipFactory(organisation=holder, role=Membership.Role.REVIEWER).user
    page = browser(reviewer)
    assert page.get(f"/join/{holder.slug}/members/").status_code == 403
    page.post(f"/join/{holder.slug}/members/", {"email": "friend@example.org", "role": "admin"})
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("persona", ["alice", "stranger", "operator"])
def test_citizens_strangers_and_operators_do_not_manage_members_by_the_page(request, persona, holder) -> None:  # type: ignore[no-untyped-def]
    user = request.getfixturevalue(persona)
    expected = 200 if persona == "operator" else 404  # operators manage members, as policy.py says
    assert browser(user).get(f"/join/{holder.slug}/members/").status_code == expected


def test_a_member_accepting_another_invitation_is_refused(holder, holder_admin) -> None:  # type: ignore[no-untyped-def]
    _, token = services.invitation_send(
        actor=holder_admin, organisation=holder, email="hana@example.org", role="reviewer"
    )
    with pytest.raises(Conflict):
        services.invitation_accept(user=holder_admin, token=token)
    assert Membership.objects.get(user=holder_admin, organisation=holder).role == "admin"


def test_sending_the_invitation_twice_sends_one_mail(holder, holder_admin) -> None:  # type: ignore[no-untyped-def]
    services.invitation_send(actor=holder_admin, organisation=holder, email="new@example.org", role="reviewer")
    event = OutboxEvent.objects.get(topic="invitation.sent")
    from broker.handlers import send_invitation

    send_invitation(event)
    event.refresh_from_db()
    send_invitation(event)
    assert len(mail.outbox) == 1


def test_an_applicant_has_three_applications_waiting_at_most(applicant) -> None:  # type: ignore[no-untyped-def]
    for n in range(services.PENDING_APPLICATIONS_MAX):
        OrganisationFactory(slug=f"waiting-{n}", verification_state="pending", verified_at=None)
        MembershipFactory(user=applicant, organisation=Organisation.objects.get(slug=f"waiting-{n}"))
    with pytest.raises(Conflict):
        services.organisation_apply(actor=applicant, **APPLICATION)
    assert not Organisation.objects.filter(slug=APPLICATION["slug"]).exists()


def test_an_operator_may_reconsider_a_rejection_but_not_verify_an_excluded_organisation(  # type: ignore[no-untyped-def]
    applicant, operator, data_user
) -> None:
    organisation = services.organisation_apply(actor=applicant, **APPLICATION)
    services.organisation_reject(actor=operator, organisation=organisation, reason="documents missing")
    services.organisation_verify(actor=operator, organisation=organisation)
    organisation.refresh_from_db()
    assert organisation.is_verified
    assert organisation.state_reason == ""
    services.organisation_exclude(actor=operator, organisation=data_user, reason="abuse")
    with pytest.raises(Conflict):
        services.organisation_verify(actor=operator, organisation=data_user)
    data_user.refresh_from_db()
    assert data_user.verification_state == Organisation.Verification.EXCLUDED
