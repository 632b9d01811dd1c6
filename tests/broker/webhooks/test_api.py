"""The webhooks API and portal page: who registers, lists, replays and attests, and who is told nothing exists."""

from __future__ import annotations

from typing import Any

from broker.models import AuditBody, Membership, Organisation, User, WebhookDelivery, WebhookEndpoint
from broker.oauth import services as oauth
from consent import services as consent
from tests.broker.webhooks.conftest import World, endpoint_for
from tests.conftest import client_for
from tests.factories import MembershipFactory


def test_an_admin_registers_an_https_endpoint_and_lists_it(holder: Organisation, holder_admin: User) -> None:
    api = client_for(holder_admin)
    response = api.post("/api/v1/webhooks/", {"url": "https://hooks.volta.example/tiers"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["organisation"] == "volta"
    assert response.json()["created_by"] == f"user:{holder_admin.pk}"
    listed = api.get("/api/v1/webhooks/").json()["results"]
    assert [row["url"] for row in listed] == ["https://hooks.volta.example/tiers"]
    assert AuditBody.objects.filter(verb="webhook.registered", subject="organisation:volta").exists()


def test_plain_http_is_refused_except_on_loopback(holder_admin: User, settings: Any) -> None:
    api = client_for(holder_admin)
    refused = api.post("/api/v1/webhooks/", {"url": "http://hooks.volta.example/tiers"}, format="json")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "url"
    assert api.post("/api/v1/webhooks/", {"url": "http://127.0.0.1:8099/h"}, format="json").status_code == 201
    settings.TIERS_WEBHOOK_ALLOW_LOOPBACK_HTTP = False
    assert api.post("/api/v1/webhooks/", {"url": "http://localhost:8099/h"}, format="json").status_code == 422
    assert not WebhookEndpoint.objects.filter(url__startswith="http://h").exists()


def test_another_organisations_endpoint_is_not_found(
    holder: Organisation, user_admin: User, holder_admin: User
) -> None:
    endpoint = endpoint_for(holder)
    stranger_admin = client_for(user_admin)
    assert stranger_admin.post(f"/api/v1/webhooks/{endpoint.pk}/disable").status_code == 404
    assert client_for(holder_admin).post(f"/api/v1/webhooks/{endpoint.pk}/disable").json()["enabled"] is False


def test_a_member_may_not_register_for_another_organisation(holder: Organisation, user_admin: User) -> None:
    response = client_for(user_admin).post(
        "/api/v1/webhooks/?organisation=volta", {"url": "https://evil.example/h"}, format="json"
    )
    assert response.status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_a_reviewer_sees_nothing_to_manage(holder: Organisation) -> None:
    reviewer = MembershipFactory(organisation=holder, role=Membership.Role.REVIEWER).user
    assert client_for(reviewer).get("/api/v1/webhooks/").status_code == 403


def test_a_stranger_and_anonymous_get_nothing(stranger: User, api: Any) -> None:
    assert client_for(stranger).get("/api/v1/webhooks/").status_code == 403
    assert api.get("/api/v1/webhooks/deliveries/").status_code in (401, 403)


def test_a_client_with_the_webhooks_scope_registers_endpoints(holder: Organisation, holder_admin: User) -> None:
    from rest_framework.test import APIClient

    client, secret = oauth.client_register(
        actor=holder_admin, organisation=holder, name="hooks", auth_method="client_secret_basic", scopes=["webhooks"]
    )
    form = {"grant_type": "client_credentials", "scope": "webhooks"}
    answer = APIClient().post("/oauth/token", form, HTTP_AUTHORIZATION=_basic(client.client_id, secret))
    token = answer.json()["access_token"]
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api.post("/api/v1/webhooks/", {"url": "https://hooks.volta.example/t"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["created_by"] == f"client:{client.client_id}"


def _basic(client_id: str, secret: str | None) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_dead_letters_are_listed_for_the_organisation_and_for_operators(
    world: World, lab_admin: User, holder_admin: User, operator: User
) -> None:
    endpoint_for(world.lab)
    endpoint_for(world.holder)
    consent.consent_withdraw(citizen=world.alice, record=world.consent)
    WebhookDelivery.objects.update(state=WebhookDelivery.State.DEAD)
    lab_rows = client_for(lab_admin).get("/api/v1/webhooks/deliveries/?state=dead").json()["results"]
    assert [row["organisation"] for row in lab_rows] == ["labo"]
    assert client_for(lab_admin).get("/api/v1/webhooks/deliveries/?state=pending").json()["results"] == []
    everyone = client_for(operator).get("/api/v1/webhooks/deliveries/?state=dead").json()["results"]
    assert sorted(row["organisation"] for row in everyone) == ["labo", "volta"]


def test_replay_through_the_api_requeues_a_dead_delivery_of_ones_own_only(
    world: World, lab_admin: User, holder_admin: User
) -> None:
    endpoint_for(world.lab)
    consent.consent_withdraw(citizen=world.alice, record=world.consent)
    dead = WebhookDelivery.objects.get()
    assert client_for(lab_admin).post(f"/api/v1/webhooks/deliveries/{dead.pk}/replay").status_code == 409
    WebhookDelivery.objects.update(state=WebhookDelivery.State.DEAD)
    assert client_for(holder_admin).post(f"/api/v1/webhooks/deliveries/{dead.pk}/replay").status_code == 404
    response = client_for(lab_admin).post(f"/api/v1/webhooks/deliveries/{dead.pk}/replay")
    assert response.status_code == 200
    assert response.json()["state"] == "pending"
    assert AuditBody.objects.filter(verb="webhook.replayed").count() == 1


def test_a_deletion_attestation_is_audited(world: World, lab_admin: User, holder_admin: User) -> None:
    endpoint_for(world.lab)
    consent.consent_withdraw(citizen=world.alice, record=world.consent)
    told = WebhookDelivery.objects.get()
    body = {"event": str(told.pk), "subject_pseudonym": told.payload["subject_pseudonym"]}
    url = f"/api/v1/grants/{world.grant.pk}/deletions"
    assert client_for(holder_admin).post(url, body, format="json").status_code == 404
    wrong = client_for(lab_admin).post(url, {**body, "subject_pseudonym": "0" * 32}, format="json")
    assert wrong.status_code == 422
    response = client_for(lab_admin).post(url, body, format="json")
    assert response.status_code == 201, response.json()
    entry = AuditBody.objects.get(verb="grant.deletion_attested")
    assert entry.subject == f"grant:{world.grant.pk}"
    assert told.payload["subject_pseudonym"].encode() not in bytes(entry.canonical)


def test_the_portal_page_shows_endpoints_and_dead_letters_with_a_replay_button(
    world: World, lab_admin: User, user_admin: User
) -> None:
    endpoint_for(world.lab)
    consent.consent_withdraw(citizen=world.alice, record=world.consent)
    dead = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(state=WebhookDelivery.State.DEAD)
    page = client_for(lab_admin).get("/org/labo/webhooks/")
    assert page.status_code == 200
    assert "https://hooks.example.org/tiers" in page.content.decode()
    assert f"/org/labo/webhooks/deliveries/{dead.pk}/replay" in page.content.decode()
    assert client_for(user_admin).get("/org/labo/webhooks/").status_code == 404
    replayed = client_for(lab_admin).post(f"/org/labo/webhooks/deliveries/{dead.pk}/replay")
    assert replayed.status_code == 302
    dead.refresh_from_db()
    assert dead.state == WebhookDelivery.State.PENDING
    registered = client_for(lab_admin).post("/org/labo/webhooks/", {"url": "http://example.org/plain"})
    assert registered.status_code == 200
    assert "https://" in registered.content.decode()


def test_a_rights_request_is_acknowledged_by_its_recipient(world: World, holder_admin: User) -> None:
    endpoint_for(world.holder)
    filed = consent.rights_request_file(citizen=world.alice, kind="rectification", details="My address changed.")
    recipient = filed.recipients.get(organisation=world.holder)
    response = client_for(holder_admin).post(
        "/api/v1/webhooks/acknowledgements", {"event": str(recipient.delivery_id)}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"request": str(filed.pk), "state": "acknowledged"}


def test_an_operator_replays_but_does_not_register_in_an_organisations_place(
    holder: Organisation, operator: User
) -> None:
    import pytest

    from broker.errors import Forbidden
    from broker.webhooks import services

    with pytest.raises(Forbidden):
        services.endpoint_register(by=operator, organisation=holder, url="https://operator.example/h")
    assert client_for(operator).post("/org/volta/webhooks/", {"url": "https://operator.example/h"}).status_code == 200
    assert not WebhookEndpoint.objects.exists()
