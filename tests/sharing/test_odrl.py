"""Agreements as ODRL 2.2 policies: the terms, the constraints, and who may read a draft's."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.test import APIClient

from broker.models import Organisation, User
from consent.models import ConsentModule
from sharing import odrl, services
from sharing.models import Agreement, Dataset
from sharing.vocabulary import DPV, expand
from tests.conftest import client_for
from tests.sharing.conftest import PUBLIC_BENEFIT, RESEARCH, agreement_in_force, terms

# The terms of http://www.w3.org/ns/odrl.jsonld that the policies use.
ODRL_TERMS = {
    "Offer", "uid", "profile", "assigner", "permission", "prohibition", "duty", "target", "action", "constraint",
    "leftOperand", "operator", "rightOperand", "use", "obtainConsent", "delete", "commercialize", "purpose",
    "recipient", "dateTime", "spatial", "elapsedTime", "isAnyOf", "eq", "gteq", "lt", "lteq",
}  # fmt: skip
VOCAB_VALUED = ("@type", "action", "leftOperand", "operator")


def undefined_terms(document: dict[str, Any], known: set[str] = ODRL_TERMS) -> list[str]:
    """Keys and vocabulary values that are neither a known context term, a declared prefix, nor an IRI."""
    parts = document["@context"] if isinstance(document["@context"], list) else [document["@context"]]
    prefixes = {name for part in parts if isinstance(part, dict) for name in part if not name.startswith("@")}

    def defined(term: str) -> bool:
        if term.startswith("@") or term in known:
            return True
        prefix, colon, _ = term.partition(":")
        return bool(colon) and (prefix in prefixes or prefix in ("http", "https", "urn"))

    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("@context", "@value"):
                    continue  # a literal's value holds no terms (an @json literal has keys of its own)
                if not defined(key):
                    found.append(key)
                if key in VOCAB_VALUED:
                    found.extend(v for v in (value if isinstance(value, list) else [value]) if not defined(v))
                if key == "@id" and not defined(value):
                    found.append(value)
                walk(value)

    walk(document)
    return found


def constraint(rule: dict[str, Any], left: str, operator: str | None = None) -> Any:
    matches = [
        c["rightOperand"]
        for c in rule["constraint"]
        if c["leftOperand"] == left and (operator is None or c["operator"] == operator)
    ]
    assert len(matches) == 1, f"expected one {left} {operator} constraint, found {matches}"
    return matches[0]


def actions(rules: list[dict[str, Any]], target: str) -> set[str]:
    return {rule["action"] for rule in rules if rule["target"] == target}


def open_data(holder_admin: User, holder: Organisation) -> Dataset:
    """A dataset about no one: the load on each substation."""
    return services.dataset_register(
        by=holder_admin,
        holder=holder,
        slug="substation-load",
        title="Substation load",
        mode=Dataset.Mode.HOSTED,
        table_schema={"fields": [{"name": "substation", "type": "string"}, {"name": "mw", "type": "number"}]},
    )


def test_policy_offers_each_dataset_for_the_agreed_purposes_to_the_agreed_recipients(
    agreement: Agreement, trips: Dataset
) -> None:
    document = odrl.policy(agreement)

    assert document["@type"] == "Offer"
    assert document["uid"] == f"{settings.TIERS_BASE_URL}/api/v1/agreements/{agreement.pk}"
    assert "http://www.w3.org/ns/odrl.jsonld" in document["@context"]
    assert document["assigner"]["dct:identifier"] == f"siren:{trips.holder.legal_identifier}"
    [permission] = document["permission"]
    assert permission["target"] == f"{settings.TIERS_BASE_URL}/api/v1/datasets/{trips.pk}"
    assert permission["action"] == "use"
    purposes = constraint(permission, "purpose", "isAnyOf")
    assert {p["@id"] for p in purposes} == {expand(RESEARCH), expand(PUBLIC_BENEFIT)}
    recipients = constraint(permission, "recipient", "isAnyOf")
    assert {r["@id"] for r in recipients} == {DPV + "GovernmentalOrganisation", DPV + "AcademicScientificOrganisation"}


def test_policy_is_valid_only_within_the_agreement_and_in_the_eu(agreement: Agreement) -> None:
    [permission] = odrl.policy(agreement)["permission"]

    starts = constraint(permission, "dateTime", "gteq")
    ends = constraint(permission, "dateTime", "lt")
    assert starts["@type"] == ends["@type"] == "xsd:dateTime"
    signed = services.agreement_content(agreement)
    assert (starts["@value"], ends["@value"]) == (signed["valid_from"], signed["valid_until"])
    assert constraint(permission, "spatial", "eq") == {"@id": "https://w3id.org/dpv/loc#EU"}
    assert constraint(permission, "elapsedTime", "lteq") == {"@value": "P365D", "@type": "xsd:duration"}


def test_every_term_of_the_policy_expands_to_an_iri(agreement: Agreement) -> None:
    document = odrl.policy(agreement)

    assert undefined_terms(document) == []
    assert document["@context"][1]["dpv"] == DPV
    assert document["@context"][1]["tiers"] == f"{settings.TIERS_BASE_URL}/ns/sharing#"


def test_default_conditions_forbid_reidentification_and_commercial_use_and_bound_retention(
    agreement: Agreement, trips: Dataset
) -> None:
    document = odrl.policy(agreement)
    target = odrl.dataset_iri(trips)

    assert actions(document["prohibition"], target) == {"tiers:reidentify", "commercialize"}
    [permission] = document["permission"]
    [delete] = [duty for duty in permission["duty"] if duty["action"] == "delete"]
    assert constraint(delete, "elapsedTime", "lteq")["@value"] == "P365D"


def test_relaxed_conditions_drop_their_rules(
    holder_admin: User, operator: User, trips: Dataset, module: ConsentModule
) -> None:
    conditions = {"non_commercial": False, "eu_processing_only": False, "retention_days_max": 90}
    relaxed = agreement_in_force(holder_admin, operator, [trips], conditions=conditions)

    document = odrl.policy(relaxed)

    assert actions(document["prohibition"], odrl.dataset_iri(trips)) == {"tiers:reidentify"}
    [permission] = document["permission"]
    assert all(c["leftOperand"] != "spatial" for c in permission["constraint"])
    [delete] = [duty for duty in permission["duty"] if duty["action"] == "delete"]
    assert constraint(delete, "elapsedTime", "lteq")["@value"] == "P90D"


def test_only_personal_datasets_carry_the_consent_duty_naming_the_modules(
    holder_admin: User, operator: User, trips: Dataset, module: ConsentModule
) -> None:
    substations = open_data(holder_admin, trips.holder)
    both = agreement_in_force(holder_admin, operator, [trips, substations])

    document = odrl.policy(both)

    by_target = {p["target"]: p for p in document["permission"]}
    [consent] = [d for d in by_target[odrl.dataset_iri(trips)]["duty"] if d["action"] == "obtainConsent"]
    assert consent["dct:conformsTo"] == [
        {"@id": f"{settings.TIERS_BASE_URL}/api/v1/consent-modules/#{trips.holder.slug}/mobility"}
    ]
    assert "obtainConsent" not in {d["action"] for d in by_target[odrl.dataset_iri(substations)]["duty"]}
    assert odrl.policy(Agreement.objects.get(pk=both.pk)) == document  # deterministic


def test_a_new_version_names_the_version_it_replaces_and_both_hashes(
    agreement: Agreement, holder_admin: User, trips: Dataset
) -> None:
    draft = services.agreement_propose(
        by=holder_admin,
        holder=agreement.holder,
        terms=terms([trips], purposes=[RESEARCH]),
        predecessor=agreement,
    )

    document = odrl.policy(draft)

    assert document["dct:hasVersion"] == "2"
    assert document["dct:isVersionOf"] == {"@id": f"urn:uuid:{agreement.series}"}
    assert document["spdx:checksum"]["spdx:checksumValue"] == draft.content_hash
    assert document["dct:replaces"]["@id"] == odrl.agreement_iri(agreement)
    assert document["dct:replaces"]["spdx:checksum"]["spdx:checksumValue"] == agreement.content_hash
    assert draft.content_hash != agreement.content_hash
    assert "dct:dateAccepted" not in document  # not countersigned yet


# --- the API -------------------------------------------------------------------------------------


def test_anyone_reads_an_agreement_in_force_as_json_ld(api: APIClient, agreement: Agreement) -> None:
    response = api.get(f"/api/v1/agreements/{agreement.pk}/odrl")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/ld+json")
    assert response.json() == odrl.policy(agreement)


def test_plain_json_is_served_on_request(api: APIClient, agreement: Agreement) -> None:
    response = api.get(f"/api/v1/agreements/{agreement.pk}/odrl", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["uid"] == odrl.agreement_iri(agreement)


def test_a_draft_is_not_found_by_anonymous_callers_or_strangers(
    api: APIClient, stranger: User, holder_admin: User, trips: Dataset, module: ConsentModule
) -> None:
    draft = services.agreement_propose(by=holder_admin, holder=trips.holder, terms=terms([trips]))

    for client in (api, client_for(stranger)):
        response = client.get(f"/api/v1/agreements/{draft.pk}/odrl")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"


def test_a_draft_is_visible_to_its_holder(holder_admin: User, trips: Dataset, module: ConsentModule) -> None:
    draft = services.agreement_propose(by=holder_admin, holder=trips.holder, terms=terms([trips]))

    response = client_for(holder_admin).get(f"/api/v1/agreements/{draft.pk}/odrl")

    assert response.status_code == 200
    assert response.json()["tiers:state"] == Agreement.State.DRAFT


def test_an_unknown_agreement_is_not_found(api: APIClient, db: None) -> None:
    response = api.get("/api/v1/agreements/00000000-0000-0000-0000-000000000000/odrl")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404
