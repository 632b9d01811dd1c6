"""An agreement version as an ODRL 2.2 policy in JSON-LD, with W3C DPV terms for purposes and parties.

The policy is an Offer: the holder (assigner) offers the use of its datasets to
any verified data user that meets the constraints; Tiers issues the grants.
See docs/sharing-vocabularies.md for why each term was chosen.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from broker.audit import log
from broker.models import Organisation
from sharing.models import Agreement, Dataset
from sharing.vocabulary import DPV, DPV_PD, expand

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
DCT = "http://purl.org/dc/terms/"
XSD = "http://www.w3.org/2001/XMLSchema#"
SPDX = "http://spdx.org/rdf/terms#"
DPV_LOC = "https://w3id.org/dpv/loc#"

# Kinds of data user, as DPV entity types.
RECIPIENT_TYPES: dict[str, str] = {
    Organisation.RecipientCategory.PUBLIC_AUTHORITY: DPV + "GovernmentalOrganisation",
    Organisation.RecipientCategory.RESEARCH_BODY: DPV + "AcademicScientificOrganisation",
    Organisation.RecipientCategory.NON_PROFIT: DPV + "NonProfitOrganisation",
}


# --- IRIs ----------------------------------------------------------------------------------------


def tiers_namespace() -> str:
    """Tiers' own terms (its ODRL profile): only what neither ODRL nor DPV names."""
    return f"{settings.TIERS_BASE_URL}/ns/sharing#"


def profile_iri() -> str:
    return f"{settings.TIERS_BASE_URL}/ns/sharing"


def agreement_iri(agreement: Agreement) -> str:
    return f"{settings.TIERS_BASE_URL}/api/v1/agreements/{agreement.pk}"


def policy_document_url(agreement: Agreement) -> str:
    """Where the agreement's ODRL policy is served (its subject is agreement_iri)."""
    return f"{agreement_iri(agreement)}/odrl"


def dataset_iri(dataset: Dataset) -> str:
    return f"{settings.TIERS_BASE_URL}/api/v1/datasets/{dataset.pk}"


def organisation_iri(organisation: Organisation) -> str:
    return f"{settings.TIERS_BASE_URL}/org/{organisation.slug}/"


def party(organisation: Organisation) -> dict[str, Any]:
    """An organisation as an ODRL party / DCAT publisher: its name and its legal identifier."""
    return {
        "@id": organisation_iri(organisation),
        "@type": "foaf:Organization",
        "foaf:name": organisation.name,
        "dct:identifier": f"{organisation.identifier_scheme}:{organisation.legal_identifier}",
    }


def sha256(hex_digest: str) -> dict[str, Any]:
    return {
        "@type": "spdx:Checksum",
        "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
        "spdx:checksumValue": hex_digest,
    }


# --- the policy ----------------------------------------------------------------------------------


def context() -> list[Any]:
    return [
        ODRL_CONTEXT,
        {
            "dpv": DPV,
            "dpv-pd": DPV_PD,
            "loc": DPV_LOC,
            "dct": DCT,
            "dcat": "http://www.w3.org/ns/dcat#",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "spdx": SPDX,
            "xsd": XSD,
            "tiers": tiers_namespace(),
        },
    ]


def policy(agreement: Agreement) -> dict[str, Any]:
    """The agreement version as an ODRL Offer; the same agreement always gives the same dict."""
    datasets = sorted(agreement.datasets.all(), key=lambda d: (d.slug, str(d.pk)))
    document: dict[str, Any] = {
        "@context": context(),
        "@type": "Offer",
        "uid": agreement_iri(agreement),
        "profile": profile_iri(),
        "dct:title": agreement.title,
        "dct:isVersionOf": {"@id": f"urn:uuid:{agreement.series}"},
        "dct:hasVersion": str(agreement.version),
        "spdx:checksum": sha256(agreement.content_hash),
        "tiers:state": agreement.state,
        "assigner": party(agreement.holder),
        "permission": [_permission(agreement, dataset) for dataset in datasets],
        "prohibition": [rule for dataset in datasets for rule in _prohibitions(agreement, dataset)],
    }
    if agreement.predecessor is not None:
        document["dct:replaces"] = {
            "@id": agreement_iri(agreement.predecessor),
            "spdx:checksum": sha256(agreement.predecessor_hash),
        }
    if agreement.countersigned_at is not None:
        document["dct:dateAccepted"] = _literal(log.timestamp(agreement.countersigned_at), "xsd:dateTime")
    return document


def _literal(value: str, datatype: str) -> dict[str, str]:
    return {"@value": value, "@type": datatype}


def _constraint(left: str, operator: str, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": operator, "rightOperand": right}


def _days(days: int) -> dict[str, str]:
    return _literal(f"P{days}D", "xsd:duration")


def _permission(agreement: Agreement, dataset: Dataset) -> dict[str, Any]:
    """Use of one dataset: for these purposes, by these kinds of recipient, within the validity."""
    conditions: dict[str, Any] = agreement.terms.get("conditions", {})
    recipients = sorted(RECIPIENT_TYPES[c] for c in agreement.recipient_categories if c in RECIPIENT_TYPES)
    constraints = [
        _constraint("purpose", "isAnyOf", [{"@id": expand(p)} for p in agreement.purposes]),
        _constraint("recipient", "isAnyOf", [{"@id": iri} for iri in recipients]),
        _constraint("dateTime", "gteq", _literal(log.timestamp(agreement.valid_from), "xsd:dateTime")),
        _constraint("dateTime", "lt", _literal(log.timestamp(agreement.valid_until), "xsd:dateTime")),
    ]
    if conditions.get("eu_processing_only"):
        constraints.append(_constraint("spatial", "eq", {"@id": DPV_LOC + "EU"}))
    if conditions.get("grant_days_max"):
        constraints.append(_constraint("elapsedTime", "lteq", _days(conditions["grant_days_max"])))
    duties: list[dict[str, Any]] = []
    if dataset.is_personal:
        duties.append(_consent_duty(agreement))
    if conditions.get("retention_days_max"):
        retention = _constraint("elapsedTime", "lteq", _days(conditions["retention_days_max"]))
        duties.append({"action": "delete", "constraint": [retention]})
    permission: dict[str, Any] = {"target": dataset_iri(dataset), "action": "use", "constraint": constraints}
    if duties:
        permission["duty"] = duties
    return permission


def _consent_duty(agreement: Agreement) -> dict[str, Any]:
    """Each data subject's consent under the agreement's consent modules, checked at every read."""
    modules = agreement.terms.get("consent_modules", [])
    base = f"{settings.TIERS_BASE_URL}/api/v1/consent-modules/"
    return {
        "action": "obtainConsent",
        "dct:conformsTo": [{"@id": f"{base}#{agreement.holder.slug}/{slug}"} for slug in sorted(modules)],
    }


def _prohibitions(agreement: Agreement, dataset: Dataset) -> list[dict[str, Any]]:
    conditions: dict[str, Any] = agreement.terms.get("conditions", {})
    target = dataset_iri(dataset)
    rules = []
    if conditions.get("no_reidentification"):
        rules.append({"target": target, "action": "tiers:reidentify"})
    if conditions.get("non_commercial"):
        rules.append({"target": target, "action": "commercialize"})
    return rules
