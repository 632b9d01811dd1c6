"""Excluding an organisation (DGA Art. 12(g)): everything that lets it read stops in one transaction."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from broker import services
from broker.errors import InvalidInput, NotFound
from broker.models import AuditBody, IssuedToken, OAuthClient, Organisation, User
from broker.oauth import services as oauth
from sharing import services as sharing
from sharing.models import Agreement, Dataset, Grant
from tests.broker.test_workspace import publish_module, register_trips
from tests.sharing.conftest import RESEARCH, agreement_in_force, consent_to, grant_for, link, trips_csv, upload

pytestmark = pytest.mark.django_db

ROWS = [
    ("T-ALICE", "2026-03-01", "Gare", "Campus", 4.5),
    ("T-ALICE", "2026-03-02", "Campus", "Gare", 4.5),
    ("T-NOBODY", "2026-03-01", "Nord", "Sud", 7.25),
]


def events(verb: str) -> list[dict[str, Any]]:
    return [json.loads(bytes(body.canonical)) for body in AuditBody.objects.filter(verb=verb).order_by("entry_id")]


@pytest.fixture
def grant(
    holder: Organisation, holder_admin: User, user_admin: User, data_user: Organisation, operator: User, alice: User
) -> Grant:
    """The city's grant on trips, with records about alice, who consents."""
    module, trips = publish_module(holder, holder_admin), register_trips(holder, holder_admin)
    agreement_in_force(holder_admin, operator, [trips])
    assert upload(holder_admin, trips, trips_csv(ROWS)).rows_loaded == 3
    link(alice, trips.holder, "T-ALICE")
    consent_to(alice, module, RESEARCH)
    return grant_for(user_admin, data_user, trips, purpose=RESEARCH)


@pytest.fixture
def credentials(user_admin: User, data_user: Organisation) -> tuple[OAuthClient, str]:
    client, secret = oauth.client_register(
        actor=user_admin,
        organisation=data_user,
        name="city reporting",
        auth_method="client_secret_basic",
        scopes=["organisation", "grants"],
    )
    assert secret is not None
    return client, secret


def ask_token(client: OAuthClient, secret: str, grant: Grant) -> Any:
    pair = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    return APIClient().post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": f"grant:{grant.pk}"},
        HTTP_AUTHORIZATION=f"Basic {pair}",
    )


def read(token: str, grant: Grant) -> int:
    answer = APIClient().get(
        f"/api/v1/grants/{grant.pk}/records", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT="application/x-ndjson"
    )
    if answer.status_code == 200:
        b"".join(answer.streaming_content)  # type: ignore[attr-defined]
    return int(answer.status_code)


def test_after_exclusion_the_organisation_gets_no_token_and_its_token_reads_nothing(  # type: ignore[no-untyped-def]
    grant: Grant, credentials, data_user: Organisation, operator: User
) -> None:
    client, secret = credentials
    first = ask_token(client, secret, grant)
    assert first.status_code == 200, first.content
    token = first.json()["access_token"]
    assert read(token, grant) == 200
    assert read(token, grant) == 200  # the token's state is now remembered by this process

    services.organisation_exclude(actor=operator, organisation=data_user, reason="re-identification attempt")

    refused = ask_token(client, secret, grant)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert read(token, grant) == 401


def test_the_cascade_disables_clients_revokes_tokens_and_grants_with_their_audit_entries(  # type: ignore[no-untyped-def]
    grant: Grant, credentials, data_user: Organisation, operator: User, holder: Organisation
) -> None:
    client, secret = credentials
    assert ask_token(client, secret, grant).status_code == 200
    assert ask_token(client, secret, grant).status_code == 200
    services.organisation_exclude(actor=operator, organisation=data_user, reason="re-identification attempt")

    data_user.refresh_from_db()
    assert data_user.verification_state == Organisation.Verification.EXCLUDED
    assert data_user.state_reason == "re-identification attempt"
    assert data_user not in Organisation.objects.verified()
    assert OAuthClient.objects.get(pk=client.pk).disabled_at is not None
    assert not IssuedToken.objects.filter(client=client, revoked_at__isnull=True).exists()
    grant.refresh_from_db()
    assert grant.state == Grant.State.REVOKED
    assert grant.revoke_reason == "organisation excluded: re-identification attempt"
    assert grant.revoked_by == f"operator:{operator.pk}"

    [excluded] = events("organisation.excluded")
    assert excluded["actor"] == f"operator:{operator.pk}"
    assert excluded["details"] == {
        "reason": "re-identification attempt",
        "clients_disabled": [client.client_id],
        "tokens_revoked": 2,
        "grants_revoked": [str(grant.pk)],
        "requests_rejected": 0,
    }
    assert events("client.disabled")[-1]["details"] == {"client_id": client.client_id}
    assert events("token.revoked_all")[-1]["details"] == {"tokens": 2}
    assert events("grant.revoked")[-1]["subject"] == f"grant:{grant.pk}"
    # The holder whose data it read is untouched.
    holder.refresh_from_db()
    assert holder.is_verified


def test_excluding_twice_changes_nothing_more(grant: Grant, data_user: Organisation, operator: User) -> None:
    services.organisation_exclude(actor=operator, organisation=data_user, reason="abuse")
    services.organisation_exclude(actor=operator, organisation=data_user, reason="again")
    assert len(events("organisation.excluded")) == 1
    data_user.refresh_from_db()
    assert data_user.state_reason == "abuse"


def test_a_failure_midway_leaves_everything_as_it_was(  # type: ignore[no-untyped-def]
    grant: Grant, credentials, data_user: Organisation, operator: User, monkeypatch
) -> None:
    client, secret = credentials
    assert ask_token(client, secret, grant).status_code == 200

    def broken(**kwargs: object) -> Grant:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(sharing, "grant_revoke", broken)
    with pytest.raises(RuntimeError):
        services.organisation_exclude(actor=operator, organisation=data_user, reason="abuse")
    data_user.refresh_from_db()
    assert data_user.is_verified
    assert OAuthClient.objects.get(pk=client.pk).disabled_at is None
    assert IssuedToken.objects.filter(client=client, revoked_at__isnull=True).count() == 1
    assert Grant.objects.get(pk=grant.pk).state == Grant.State.ACTIVE
    assert not events("organisation.excluded")
    assert not events("client.disabled")


def test_only_an_operator_excludes_and_with_a_reason(  # type: ignore[no-untyped-def]
    data_user: Organisation, holder_admin: User, user_admin: User, operator: User
) -> None:
    with pytest.raises(NotFound):
        services.organisation_exclude(actor=holder_admin, organisation=data_user, reason="rival")
    with pytest.raises(InvalidInput):
        services.organisation_exclude(actor=operator, organisation=data_user, reason=" ")
    data_user.refresh_from_db()
    assert data_user.is_verified


def test_an_excluded_holders_agreements_are_left_to_the_operator(  # type: ignore[no-untyped-def]
    grant: Grant, holder: Organisation, operator: User
) -> None:
    services.organisation_exclude(actor=operator, organisation=holder, reason="sold data")
    # Grants on its data are not the excluded organisation's own grants: they run until an operator ends them.
    assert Grant.objects.get(pk=grant.pk).state == Grant.State.ACTIVE
    assert Agreement.objects.filter(holder=holder, state=Agreement.State.ACTIVE).exists()
    assert Dataset.objects.filter(holder=holder).exists()


@pytest.mark.django_db
def test_exclusion_rejects_the_organisation_s_pending_requests(operator, user_admin, data_user, holder_admin) -> None:  # type: ignore[no-untyped-def]
    import datetime

    from django.utils import timezone

    from consent import services as consent
    from sharing import services as sharing
    from sharing.models import AccessRequest, Agreement
    from tests.sharing.conftest import JUSTIFICATION, MODULE, RESEARCH, TRIPS_SCHEMA, agreement_in_force

    holder = holder_admin.memberships.get().organisation
    consent.module_publish(actor=holder_admin, holder=holder, slug="mobility", content=dict(MODULE))
    trips = sharing.dataset_register(
        by=holder_admin, holder=holder, slug="trips", title="Trips", mode="hosted", table_schema=TRIPS_SCHEMA,
        subject_key_field="traveller", data_categories=["dpv-pd:Location"],
    )  # fmt: skip
    agreement_in_force(holder_admin, operator, [trips], approval_mode=Agreement.ApprovalMode.HOLDER)
    now = timezone.now()
    pending = sharing.access_request_submit(
        by=user_admin, organisation=data_user, items=[sharing.RequestItem(dataset=trips, fields=["day"])],
        purpose=RESEARCH, justification=JUSTIFICATION, starts_at=now, ends_at=now + datetime.timedelta(days=9),
        retention_days=9,
    )  # fmt: skip
    services.organisation_exclude(actor=operator, organisation=data_user, reason="scraped personal data")
    pending.refresh_from_db()
    assert pending.state == AccessRequest.State.REJECTED
    assert "scraped personal data" in pending.decision_reason
