"""A consent as a Kantara Consent Receipt v1.1: valid against the specification's schema, true to the DPV receipt."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from broker.dga.profile import DEMO_PROFILE, seed_demo_profile
from broker.models import Organisation, User
from consent import kantara, services
from consent.models import CitizenProfile, ConsentModule, ConsentRecord
from tests.conftest import client_for
from tests.consent.conftest import MODULE_CONTENT

SCHEMA = json.loads((Path(__file__).parent / "kantara-consent-receipt-v1.1.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
RESEARCH = "dpv:ScientificResearch"


def kantara_url(record: ConsentRecord) -> str:
    return f"/api/v1/me/consents/{record.pk}/kantara"


def fetched(citizen: User, record: ConsentRecord) -> dict[str, Any]:
    response = client_for(citizen).get(kantara_url(record))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    receipt: dict[str, Any] = response.json()
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in VALIDATOR.iter_errors(receipt)]
    assert not errors, errors
    return receipt


def dpv_claims(record: ConsentRecord) -> dict[str, Any]:
    """The signed DPV receipt of the record's latest event, read without checking it (tests/consent/test_api does)."""
    payload = record.events.order_by("-at", "-pk").first().receipt.split(".")[1]  # type: ignore[union-attr]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def test_the_schema_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_a_given_consent_s_kantara_receipt_validates_and_says_what_the_dpv_receipt_says(
    alice: User, alice_linked: object, holder: Organisation, module: ConsentModule
) -> None:
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    receipt = fetched(alice, record)
    dpv = dpv_claims(record)
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert receipt["jurisdiction"] == dpv["hasJurisdiction"] == "EU"
    assert receipt["consentTimestamp"] == int(record.given_at.timestamp())
    assert receipt["collectionMethod"] == dpv["method"]
    assert uuid.UUID(receipt["consentReceiptID"])
    assert receipt["language"] == "en"
    assert receipt["piiPrincipalId"] == dpv["dataSubject"]["@id"]
    assert alice.email not in json.dumps(receipt)
    assert receipt["policyUrl"].endswith(f"/me/modules/{module.pk}/")
    (service,) = receipt["services"]
    assert service["service"] == MODULE_CONTENT["title_en"]
    (purpose,) = service["purposes"]
    assert purpose["purposeCategory"] == [dpv["hasPurpose"]]
    assert purpose["piiCategory"] == dpv["hasPersonalDataCategory"]
    assert purpose["consentType"] == "EXPLICIT"
    assert purpose["thirdPartyDisclosure"] is True
    assert purpose["thirdPartyName"] == "Research organisations, Public authorities"
    assert f"/me/consents/{record.pk}/" in purpose["termination"]
    assert record.expires_at.date().isoformat() in purpose["termination"]
    assert (receipt["sensitive"], receipt["spiCat"]) == (False, [])


def test_the_holder_controls_and_tiers_acts_on_its_behalf(
    alice: User, alice_linked: object, holder: Organisation, module: ConsentModule
) -> None:
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    holder_entry, tiers_entry = fetched(alice, record)["piiControllers"]
    assert holder_entry == {
        "piiController": holder.name,
        "onBehalf": False,
        "contact": holder.name,
        "address": {"addressCountry": holder.country},
        "email": holder.contact_email,
        "phone": "",
    }
    assert (tiers_entry["piiController"], tiers_entry["onBehalf"]) == ("Tiers", True)

    seed_demo_profile()
    tiers_entry = fetched(alice, record)["piiControllers"][1]
    assert tiers_entry["piiController"] == DEMO_PROFILE["legal_name"]
    assert tiers_entry["contact"] == DEMO_PROFILE["contact_person"]
    assert tiers_entry["address"] == {"streetAddress": DEMO_PROFILE["address"], "addressCountry": "FR"}
    assert (tiers_entry["email"], tiers_entry["piiControllerUrl"]) == ("dpo@tiers.example", "https://tiers.example")


def test_the_receipt_is_in_the_citizen_s_language(alice: User, alice_linked: object, module: ConsentModule) -> None:
    CitizenProfile.objects.filter(user=alice).update(preferred_language="fr")
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    receipt = fetched(alice, record)
    assert receipt["language"] == "fr"
    (service,) = receipt["services"]
    assert service["service"] == MODULE_CONTENT["title_fr"]
    assert service["purposes"][0]["termination"].startswith("Prend fin le ")


def test_a_special_category_of_data_makes_the_receipt_sensitive(
    alice: User, alice_linked: object, holder: Organisation, holder_admin: User
) -> None:
    content = {**MODULE_CONTENT, "data_categories": ["dpv-pd:HealthRecord", "dpv-pd:EnergyConsumption"]}
    module = services.module_publish(actor=holder_admin, holder=holder, slug="health", content=content)
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    receipt = fetched(alice, record)
    assert (receipt["sensitive"], receipt["spiCat"]) == (True, ["dpv-pd:HealthRecord"])


def test_the_receipt_is_of_the_transaction_that_gave_or_last_renewed_the_consent(
    alice: User, alice_linked: object, module: ConsentModule
) -> None:
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    given = fetched(alice, record)
    services.consent_pause(citizen=alice, record=record)
    assert fetched(alice, record) == given  # a pause is no new consent: Kantara v1.1 has no status to change
    services.consent_resume(citizen=alice, record=record)
    renewed = services.consent_renew(citizen=alice, record=record)
    after = fetched(alice, renewed)
    assert after["consentReceiptID"] != given["consentReceiptID"]
    assert after["consentTimestamp"] == int(renewed.given_at.timestamp())
    assert kantara.giving_event(renewed).event == "renewed"  # type: ignore[union-attr]
    services.consent_withdraw(citizen=alice, record=renewed)
    assert fetched(alice, renewed)["consentReceiptID"] == after["consentReceiptID"]


def test_another_citizen_gets_404_and_others_403(
    alice: User, alice_linked: object, bob: User, holder_admin: User, stranger: User, module: ConsentModule
) -> None:
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    assert client_for(bob).get(kantara_url(record)).status_code == 404
    assert client_for(bob).get("/api/v1/me/consents/not-a-uuid/kantara").status_code == 404
    assert client_for(holder_admin).get(kantara_url(record)).status_code == 403
    assert client_for(stranger).get(kantara_url(record)).status_code == 403
    assert client_for(alice).get(kantara_url(record)).status_code == 200


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda r: r.pop("piiPrincipalId"), "'piiPrincipalId' is a required property"),
        (lambda r: r.update(version="KI-CR-v1.0.0"), "'KI-CR-v1.1.0' was expected"),
        (lambda r: r.update(consentTimestamp="2026-01-01T00:00:00Z"), "is not of type 'integer'"),
        (lambda r: r.update(sensitive=True, spiCat=[]), "should be non-empty"),
        (lambda r: r["services"][0]["purposes"][0].pop("thirdPartyName"), "'thirdPartyName' is a required property"),
        (lambda r: r["piiControllers"][0].pop("phone"), "'phone' is a required property"),
        (lambda r: r.update(status="withdrawn"), "Additional properties are not allowed"),
    ],
)
def test_the_schema_refuses_a_receipt_missing_what_kantara_requires(
    alice: User, alice_linked: object, module: ConsentModule, change: Any, complaint: str
) -> None:
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    receipt = kantara.consent_receipt(record, kantara.giving_event(record))  # type: ignore[arg-type]
    assert VALIDATOR.is_valid(receipt)
    change(receipt)
    assert any(complaint in error.message for error in VALIDATOR.iter_errors(receipt)), list(
        VALIDATOR.iter_errors(receipt)
    )


def test_the_api_schema_describes_what_the_endpoint_answers(
    alice: User, alice_linked: object, module: ConsentModule
) -> None:
    (record,) = services.consent_give(citizen=alice, module=module, purposes=[RESEARCH])
    openapi = client_for(alice).get("/api/schema/?format=json").json()
    operation = openapi["paths"]["/api/v1/me/consents/{consent_id}/kantara"]["get"]
    described = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**described, "components": openapi["components"]})
    assert described == {"$ref": "#/components/schemas/KantaraReceipt"}
    receipt = fetched(alice, record)
    assert not list(validator.iter_errors(receipt))
    required = openapi["components"]["schemas"]["KantaraReceipt"]["required"]
    assert set(required) == set(SCHEMA["required"]) | {"language", "spiCat"}
