"""Federated delivery end to end, over real HTTP: Tiers on the live server, the holder's API on its own port.

Volta keeps its meter readings; a city reads them at Volta's API with a token
Tiers bound to its grant. Volta's API, built on tiers_connector, asks Tiers
whom it may include and reports what it delivered; the citizens see it.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
import requests
from django.test import Client
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import ECKey

from broker.models import AuditBody, Organisation, User
from broker.oauth import services as oauth_services
from broker.oauth import tokens
from broker.oauth.models import OAuthClient
from consent import services as consent_services
from consent.models import ConsentModule, ConsentRecord
from sharing import services
from sharing.models import Dataset, Delivery, DeliverySubject, Grant
from tests.broker.oauth.conftest import register_secret_client
from tests.consent.conftest import MODULE_CONTENT
from tests.factories import MembershipFactory, OrganisationFactory
from tests.sharing.holder_service import HolderService
from tiers_connector import TiersClient, TiersError

pytestmark = pytest.mark.django_db(transaction=True)

PURPOSE = "dpv:ScientificResearch"
TABLE_SCHEMA = {
    "fields": [
        {"name": "customer_ref", "type": "string"},
        {"name": "kwh", "type": "number"},
        {"name": "tariff", "type": "string"},
        {"name": "postcode", "type": "string"},
    ]
}
# Alice and Bob are linked and consent; CUST-0003 never linked an account with Volta.
READINGS: dict[str, list[dict[str, Any]]] = {
    "CUST-0001": [
        {"customer_ref": "CUST-0001", "kwh": 3.5, "tariff": "base", "postcode": "69001"},
        {"customer_ref": "CUST-0001", "kwh": 4.0, "tariff": "base", "postcode": "69001"},
    ],
    "CUST-0002": [{"customer_ref": "CUST-0002", "kwh": 1.25, "tariff": "peak", "postcode": "69002"}],
    "CUST-0003": [{"customer_ref": "CUST-0003", "kwh": 9.0, "tariff": "base", "postcode": "69003"}],
}


@pytest.fixture(autouse=True)
def _served_at_the_live_server(live_server: Any, settings: Any) -> None:
    """Tiers' issuer, audience and published URLs are the live server's, as in a deployment."""
    settings.TIERS_BASE_URL = live_server.url


@pytest.fixture
def holder_api() -> Iterator[HolderService]:
    service = HolderService(READINGS).start()
    yield service
    service.stop()


@dataclass
class Federation:
    """Everything set up for one federated grant."""

    tiers_url: str
    dataset: Dataset
    module: ConsentModule
    grant: Grant
    holder_api: HolderService
    holder_client: OAuthClient
    holder_key: ECKey
    connector: TiersClient
    reader: OAuthClient
    reader_secret: str
    consents: dict[str, ConsentRecord]

    def reader_token(self, **form: str) -> str:
        """The city's access token, bound to the grant unless the form says otherwise."""
        data = {"grant_type": "client_credentials", "scope": f"grant:{self.grant.id}", **form}
        response = requests.post(
            f"{self.tiers_url}/oauth/token", data=data, auth=(self.reader.client_id, self.reader_secret), timeout=10
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def read(self, token: str | None = None) -> requests.Response:
        """The city reads Volta's API."""
        bearer = self.reader_token() if token is None else token
        return requests.get(f"{self.holder_api.url}/records", headers={"Authorization": f"Bearer {bearer}"}, timeout=10)


def _linked_and_consenting(citizen: User, holder: Organisation, module: ConsentModule, ref: str) -> ConsentRecord:
    _, code = consent_services.link_code_issue(actor="system", holder=holder, subject_ref=ref)
    consent_services.link_redeem(citizen=citizen, code=code)
    return consent_services.consent_give(citizen=citizen, module=module, purposes=[PURPOSE])[0]


@pytest.fixture
def federation(
    live_server: Any,
    holder_api: HolderService,
    holder: Organisation,
    holder_admin: User,
    data_user: Organisation,
    user_admin: User,
    operator: User,
    alice: User,
    bob: User,
) -> Federation:
    dataset = services.dataset_register(
        by=holder_admin,
        holder=holder,
        slug="meters",
        title="Half-hourly meter readings",
        mode=Dataset.Mode.FEDERATED,
        api_base_url=holder_api.url,
        table_schema=TABLE_SCHEMA,
        subject_key_field="customer_ref",
        personal_fields=["customer_ref", "postcode"],
        data_categories=["dpv-pd:EnergyConsumption"],
    )
    module = consent_services.module_publish(actor=holder_admin, holder=holder, slug="energy", content=MODULE_CONTENT)
    now = timezone.now()
    agreement = services.agreement_propose(
        by=holder_admin,
        holder=holder,
        terms=services.AgreementTerms(
            title="Volta meters for research",
            datasets=[dataset],
            purposes=[PURPOSE],
            recipient_categories=[Organisation.RecipientCategory.PUBLIC_AUTHORITY],
            consent_modules=["energy"],
            approval_mode="automatic",
            valid_from=now - datetime.timedelta(days=1),
            valid_until=now + datetime.timedelta(days=365),
        ),
    )
    services.agreement_sign(by=holder_admin, agreement=agreement, content_hash=agreement.content_hash)
    services.agreement_countersign(by=operator, agreement=agreement, content_hash=agreement.content_hash)
    consents = {
        "alice": _linked_and_consenting(alice, holder, module, "CUST-0001"),
        "bob": _linked_and_consenting(bob, holder, module, "CUST-0002"),
    }
    data_user.recipient_category = Organisation.RecipientCategory.PUBLIC_AUTHORITY
    data_user.save(update_fields=["recipient_category"])
    access_request = services.access_request_submit(
        by=user_admin,
        organisation=data_user,
        items=[services.RequestItem(dataset=dataset, fields=["kwh", "tariff"])],
        purpose=PURPOSE,
        justification="Modelling household energy use to plan the city's heating network renovation.",
        starts_at=now,
        ends_at=now + datetime.timedelta(days=30),
        retention_days=30,
    )
    grant = access_request.grants.get()
    holder_key = ECKey.generate_key("P-256", parameters={"kid": "volta-api-1", "alg": "ES256"}, private=True)
    holder_client, _ = oauth_services.client_register(
        actor=holder_admin,
        organisation=holder,
        name="Volta federated API",
        auth_method="private_key_jwt",
        scopes=["decisions"],
        jwks={"keys": [holder_key.as_dict(private=False)]},
    )
    connector = TiersClient(live_server.url, holder_client.client_id, private_jwk=holder_key)
    holder_api.connect(connector)
    reader, reader_secret = register_secret_client(
        user_admin, data_user, name="city analytics", scopes=("organisation", "grants")
    )
    return Federation(
        tiers_url=live_server.url,
        dataset=dataset,
        module=module,
        grant=grant,
        holder_api=holder_api,
        holder_client=holder_client,
        holder_key=holder_key,
        connector=connector,
        reader=reader,
        reader_secret=reader_secret,
        consents=consents,
    )


def lines_of(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def accesses_of(citizen: User) -> list[dict[str, Any]]:
    browser = Client()
    browser.force_login(citizen)
    response = browser.get("/api/v1/me/accesses/")
    assert response.status_code == 200, response.content
    return list(response.json()["results"])


# --- delivery --------------------------------------------------------------------------------------


def test_only_consenting_subjects_are_delivered_under_tiers_pseudonyms_and_granted_fields(
    federation: Federation,
) -> None:
    records = lines_of(federation.read())
    decided = federation.connector.decide(str(federation.grant.id), READINGS).included
    assert set(decided) == {"CUST-0001", "CUST-0002"}
    assert sorted(record["subject_pseudonym"] for record in records) == sorted(
        [decided["CUST-0001"], decided["CUST-0001"], decided["CUST-0002"]]
    )
    assert all(set(record) == {"subject_pseudonym", "kwh", "tariff"} for record in records)
    assert sorted(record["kwh"] for record in records) == [1.25, 3.5, 4.0]
    assert "CUST-" not in json.dumps(records)


def test_each_delivery_is_recorded_with_its_audit_entry_and_names_the_citizens(
    federation: Federation, alice: User, bob: User
) -> None:
    response = federation.read()
    delivery = Delivery.objects.get(pk=response.headers["Tiers-Delivery"])
    assert (delivery.kind, delivery.grant_id, delivery.records, delivery.subjects) == (
        Delivery.Kind.FEDERATED,
        federation.grant.id,
        3,
        2,
    )
    event = json.loads(AuditBody.objects.get(entry_id=delivery.audit_entry_id).canonical)
    assert event["verb"] == "grant.delivered"
    assert event["actor"].endswith(federation.holder_client.client_id)
    assert event["details"]["delivery"] == str(delivery.pk)
    assert (event["details"]["records"], event["details"]["not_permitted"]) == (3, 0)
    included = {subject.citizen: subject.records for subject in DeliverySubject.objects.filter(delivery=delivery)}
    assert included == {alice: 2, bob: 1}
    seen = accesses_of(alice)
    assert [(access["delivery"], access["kind"], access["records"]) for access in seen] == [
        (str(delivery.pk), "federated", 2)
    ]
    assert seen[0]["organisation"] == "marlieux"
    assert seen[0]["purpose"] == PURPOSE


def test_withdrawn_consent_is_excluded_from_the_very_next_read(federation: Federation, alice: User) -> None:
    first = federation.read()
    assert len(lines_of(first)) == 3
    consent_services.consent_withdraw(citizen=alice, record=federation.consents["alice"])
    token = federation.reader_token()
    records = lines_of(federation.read(token))
    bob_only = federation.connector.decide(str(federation.grant.id), ["CUST-0002"]).included["CUST-0002"]
    assert [record["subject_pseudonym"] for record in records] == [bob_only]
    assert [access["delivery"] for access in accesses_of(alice)] == [first.headers["Tiers-Delivery"]]


# --- what the connector refuses ---------------------------------------------------------------------


def test_a_request_without_a_token_is_refused(federation: Federation) -> None:
    response = requests.get(f"{federation.holder_api.url}/records", timeout=10)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert not Delivery.objects.exists()


def test_a_token_for_another_audience_is_refused(federation: Federation) -> None:
    # The city's token for Tiers' own API: signed by Tiers, but not for Volta's API.
    response = federation.read(federation.reader_token(scope="organisation"))
    assert response.status_code == 401
    assert "aud" in federation.holder_api.refusals[-1]
    assert not Delivery.objects.exists()


def test_an_expired_token_is_refused(federation: Federation) -> None:
    now = int(time.time())
    claims = {
        **_claims_of(federation.reader_token()),
        "iat": now - 900,
        "exp": now - 600,
        "jti": uuid.uuid4().hex,
    }
    response = federation.read(tokens.sign(claims))  # Tiers' own key: only the dates are wrong
    assert response.status_code == 401
    assert "Expired" in federation.holder_api.refusals[-1]


def test_a_forged_token_is_refused(federation: Federation) -> None:
    genuine = federation.reader_token()
    header = json.loads(_b64decode(genuine.split(".")[0]))
    forger = ECKey.generate_key("P-256", parameters={"kid": header["kid"]}, private=True)
    forged = jwt.encode(header, _claims_of(genuine), forger, algorithms=["ES256"])
    response = federation.read(forged)
    assert response.status_code == 401
    assert "BadSignature" in federation.holder_api.refusals[-1]
    assert not Delivery.objects.exists()


def test_a_revoked_grant_is_refused_at_once_when_the_api_introspects(
    federation: Federation, holder_admin: User
) -> None:
    federation.holder_api.introspect = True
    token = federation.reader_token()
    assert len(lines_of(federation.read(token))) == 3
    services.grant_revoke(by=holder_admin, grant=federation.grant, reason="the city's study ended early")
    response = federation.read(token)
    assert response.status_code == 401
    assert "introspection" in federation.holder_api.refusals[-1]
    assert Delivery.objects.count() == 1


def test_a_revoked_grant_gets_no_decision_without_introspection(federation: Federation, holder_admin: User) -> None:
    token = federation.reader_token()
    services.grant_revoke(by=holder_admin, grant=federation.grant, reason="the city's study ended early")
    response = federation.read(token)
    assert response.status_code == 403
    assert "not active" in response.json()["detail"]
    assert not Delivery.objects.exists()


# --- what Tiers refuses -----------------------------------------------------------------------------


def test_a_replayed_receipt_is_refused(federation: Federation) -> None:
    federation.read()
    with pytest.raises(TiersError) as refusal:
        federation.connector.submit_receipt(federation.holder_api.receipts[-1])
    assert refusal.value.status == 422
    assert "jti" in refusal.value.detail
    assert Delivery.objects.count() == 1


def test_a_receipt_signed_by_another_key_is_refused(federation: Federation, live_server: Any) -> None:
    # Volta's client authenticates, but the receipt it sends was signed by a key Volta never registered.
    impostor_key = ECKey.generate_key("P-256", parameters={"kid": "volta-api-1"}, private=True)
    receipt = TiersClient(live_server.url, federation.holder_client.client_id, private_jwk=impostor_key).receipt(
        str(federation.grant.id), {"CUST-0001": 2}
    )
    with pytest.raises(TiersError) as refusal:
        federation.connector.submit_receipt(receipt)
    assert refusal.value.status == 422
    assert "does not verify" in refusal.value.detail
    assert not Delivery.objects.exists()


def test_another_holders_client_gets_no_decision_nor_receipt_about_this_grant(
    federation: Federation, live_server: Any
) -> None:
    other = cast(Organisation, OrganisationFactory(slug="hydra", name="Hydra Eau", kind=Organisation.Kind.HOLDER))
    admin = cast(User, MembershipFactory(user__username="hugo", organisation=other).user)
    key = ECKey.generate_key("P-256", parameters={"kid": "hydra-1"}, private=True)
    client, _ = oauth_services.client_register(
        actor=admin,
        organisation=other,
        name="Hydra API",
        auth_method="private_key_jwt",
        scopes=["decisions"],
        jwks={"keys": [key.as_dict(private=False)]},
    )
    with TiersClient(live_server.url, client.client_id, private_jwk=key) as hydra:
        with pytest.raises(TiersError) as refusal:
            hydra.decide(str(federation.grant.id), ["CUST-0001"])
        assert refusal.value.status == 404
        with pytest.raises(TiersError) as refusal:
            hydra.report(str(federation.grant.id), {"CUST-0001": 2})
        assert refusal.value.status == 404
    assert not Delivery.objects.exists()


def test_a_data_users_client_cannot_ask_for_decisions(federation: Federation) -> None:
    decisions = f"{federation.tiers_url}/api/v1/decisions"
    body = {"grant": str(federation.grant.id), "subjects": ["CUST-0001"]}
    own_api_token = federation.reader_token(scope="organisation")
    answered = requests.post(decisions, json=body, headers={"Authorization": f"Bearer {own_api_token}"}, timeout=10)
    assert answered.status_code == 404
    assert answered.headers["Content-Type"].startswith("application/problem+json")
    grant_token = federation.reader_token()  # meant for Volta's API, not Tiers'
    answered = requests.post(decisions, json=body, headers={"Authorization": f"Bearer {grant_token}"}, timeout=10)
    assert answered.status_code == 401
    asked = requests.post(
        f"{federation.tiers_url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "decisions"},
        auth=(federation.reader.client_id, federation.reader_secret),
        timeout=10,
    )
    assert asked.status_code == 400
    assert asked.json()["error"] == "invalid_scope"


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _claims_of(token: str) -> dict[str, Any]:
    return dict(json.loads(_b64decode(token.split(".")[1])))
