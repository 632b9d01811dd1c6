"""The consent API, tried by the citizen, another citizen, organisations and strangers."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from django.test import Client
from rest_framework.test import APIClient

from consent import services
from consent.models import ConsentRecord
from tests.broker.oauth.conftest import register_secret_client
from tests.conftest import client_for

CONSENTS = "/api/v1/me/consents/"


def csrf_client(user) -> Client:  # type: ignore[no-untyped-def]
    """A browser-like client: a session, and the CSRF token from Django's csrftoken cookie."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/accounts/login/")
    return client


def csrf_post(client: Client, url: str, body: dict | None = None):  # type: ignore[no-untyped-def, type-arg]
    token = client.cookies["csrftoken"].value
    return client.post(url, json.dumps(body or {}), content_type="application/json", HTTP_X_CSRFTOKEN=token)


def test_a_citizen_gives_consent_through_the_api_and_lists_it(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    client = csrf_client(alice)
    response = csrf_post(client, CONSENTS, {"module": module.pk, "purposes": ["dpv:ScientificResearch"]})
    assert response.status_code == 201, response.content
    (given,) = response.json()
    assert given["state"] == "given"
    assert given["holder"] == "volta"
    assert given["purposes"] == ["dpv:ScientificResearch"]
    listed = client.get(CONSENTS).json()
    assert [c["id"] for c in listed] == [given["id"]]
    assert listed[0]["expires_at"]


def test_giving_consent_without_the_csrf_token_is_refused(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    client = csrf_client(alice)
    response = client.post(
        CONSENTS,
        json.dumps({"module": module.pk, "purposes": ["dpv:ScientificResearch"]}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize("action", ["pause", "resume", "renew", "withdraw"])
def test_each_action_is_an_empty_post_answering_the_updated_consent(alice, alice_linked, module, action) -> None:  # type: ignore[no-untyped-def]
    (record,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])
    if action == "resume":
        services.consent_pause(citizen=alice, record=record)
    response = csrf_post(csrf_client(alice), f"{CONSENTS}{record.pk}/{action}")
    assert response.status_code == 200
    expected = {"pause": "paused", "resume": "given", "renew": "renewed", "withdraw": "withdrawn"}[action]
    assert response.json()["state"] == expected


def test_another_citizen_gets_404_on_every_consent_url(alice, alice_linked, bob, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])
    intruder = csrf_client(bob)
    assert intruder.get(f"{CONSENTS}{record.pk}").status_code == 404
    assert intruder.get(f"/api/v1/consents/{record.pk}/receipt").status_code == 404
    for action in ("pause", "withdraw", "renew", "resume"):
        assert csrf_post(intruder, f"{CONSENTS}{record.pk}/{action}").status_code == 404
    assert intruder.get(CONSENTS).json() == []
    record.refresh_from_db()
    assert record.state == "given"


@pytest.mark.parametrize("bad_id", ["1", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "' OR 1=1 --"])
def test_any_unknown_consent_id_is_a_problem_404(alice, bad_id: str) -> None:  # type: ignore[no-untyped-def]
    response = client_for(alice).get(f"{CONSENTS}{bad_id}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("persona", ["holder_admin", "stranger", "operator"])
def test_people_who_are_not_citizens_have_no_consents_api(request, persona) -> None:  # type: ignore[no-untyped-def]
    assert client_for(request.getfixturevalue(persona)).get(CONSENTS).status_code == 403


def test_an_organisations_token_cannot_reach_a_citizens_consents(api: APIClient, holder_admin, holder) -> None:  # type: ignore[no-untyped-def]
    from tests.broker.oauth.conftest import token_of

    client, secret = register_secret_client(holder_admin, holder, name="c")
    token = token_of(api, client, secret)["access_token"]
    assert api.get(CONSENTS, HTTP_AUTHORIZATION=f"Bearer {token}").status_code in (401, 403)


def test_the_receipt_verifies_with_an_independent_library_and_one_changed_byte_fails(  # type: ignore[no-untyped-def]
    alice, alice_linked, module
) -> None:
    (record,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])
    client = client_for(alice)
    response = client.get(f"/api/v1/consents/{record.pk}/receipt")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jose"
    receipt = response.content.decode()
    jwks = APIClient().get("/oauth/jwks").json()
    header = jwt.get_unverified_header(receipt)
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    document = json.loads(jwt.api_jws.decode_complete(receipt, key.key, algorithms=["ES256"])["payload"])
    assert document["@type"] == "dpv:ConsentRecord"
    assert document["@id"] == f"urn:uuid:{record.pk}"
    assert document["hasPurpose"] == "dpv:ScientificResearch"
    assert document["hasConsentStatus"] == "dpv:ConsentGiven"
    assert document["notice"]["sha256"] == module.notice_hash
    assert document["dataController"]["name"] == "Volta Énergie"
    head, payload, signature = receipt.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["hasPurpose"] = "dpv:Marketing"
    forged_payload = base64.urlsafe_b64encode(json.dumps(tampered).encode()).rstrip(b"=").decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.api_jws.decode_complete(f"{head}.{forged_payload}.{signature}", key.key, algorithms=["ES256"])
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.api_jws.decode_complete(f"{head}.{payload}.{flipped}", key.key, algorithms=["ES256"])


def test_withdrawal_shows_in_the_history_and_a_new_receipt(alice, alice_linked, module) -> None:  # type: ignore[no-untyped-def]
    (record,) = services.consent_give(citizen=alice, module=module, purposes=["dpv:ScientificResearch"])
    services.consent_withdraw(citizen=alice, record=record)
    body = client_for(alice).get(f"{CONSENTS}{record.pk}").json()
    assert [e["event"] for e in body["events"]] == ["given", "withdrawn"]
    receipt = client_for(alice).get(f"/api/v1/consents/{record.pk}/receipt").content.decode()
    payload = json.loads(base64.urlsafe_b64decode(receipt.split(".")[1] + "=="))
    assert payload["hasConsentStatus"] == "dpv:ConsentWithdrawn"


def test_a_holder_issues_link_codes_with_its_token_and_publishes_modules(api: APIClient, holder_admin, holder) -> None:  # type: ignore[no-untyped-def]
    from tests.broker.oauth.conftest import token_of
    from tests.consent.conftest import MODULE_CONTENT

    client, secret = register_secret_client(holder_admin, holder, name="crm", scopes=("link_codes", "consent_modules"))
    token = token_of(api, client, secret, scope="link_codes consent_modules")["access_token"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    issued = api.post("/api/v1/link-codes/", {"subject_ref": "CUST-77"}, format="json", **auth)
    assert issued.status_code == 201
    assert len(issued.json()["code"]) == 24
    published = api.post("/api/v1/consent-modules/", {"slug": "energy", **MODULE_CONTENT}, format="json", **auth)
    assert published.status_code == 201, published.content
    assert published.json()["version"] == 1
    assert [m["slug"] for m in APIClient().get("/api/v1/consent-modules/").json()] == ["energy"]


def test_a_data_users_member_cannot_issue_link_codes(user_admin) -> None:  # type: ignore[no-untyped-def]
    response = client_for(user_admin).post("/api/v1/link-codes/", {"subject_ref": "x"}, format="json")
    assert response.status_code == 403


def test_a_token_without_the_link_codes_scope_cannot_issue_them(api: APIClient, holder_admin, holder) -> None:  # type: ignore[no-untyped-def]
    from tests.broker.oauth.conftest import token_of

    client, secret = register_secret_client(holder_admin, holder, name="c")
    token = token_of(api, client, secret)["access_token"]
    response = api.post(
        "/api/v1/link-codes/", {"subject_ref": "x"}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 403
