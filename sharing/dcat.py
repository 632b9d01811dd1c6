"""The catalogue of datasets offered for data altruism, as DCAT-AP 3.0 in JSON-LD.

A dataset is offered while it is active, its holder is verified, and at least
one agreement in force covers it; each such agreement is linked as its ODRL
policy. See docs/sharing-vocabularies.md.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.utils import timezone

from broker.models import Organisation
from sharing import odrl
from sharing.models import Agreement, Dataset
from sharing.vocabulary import DPV, DPV_PD, expand

TABLE_SCHEMA_SPEC = "https://specs.frictionlessdata.io/table-schema/"
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"
RESTRICTED = "http://publications.europa.eu/resource/authority/access-right/RESTRICTED"
RECORD_MEDIA_TYPES = ("application/x-ndjson", "text/csv")

CONTEXT: dict[str, str] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": odrl.DCT,
    "foaf": "http://xmlns.com/foaf/0.1/",
    "odrl": "http://www.w3.org/ns/odrl/2/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "dpv": DPV,
    "dpv-pd": DPV_PD,
    "xsd": odrl.XSD,
}


def agreements_in_force(at: datetime.datetime) -> QuerySet[Agreement]:
    return Agreement.objects.filter(state=Agreement.State.ACTIVE, valid_from__lte=at, valid_until__gt=at)


def offered(datasets: QuerySet[Dataset], at: datetime.datetime | None = None) -> QuerySet[Dataset]:
    """The datasets among these that are on offer: active, of a verified holder, under an agreement in force."""
    in_force = agreements_in_force(at or timezone.now())
    return (
        datasets.filter(
            Exists(in_force.filter(datasets=OuterRef("pk"))),
            state=Dataset.State.ACTIVE,
            holder__verification_state=Organisation.Verification.VERIFIED,
        )
        .select_related("holder")
        .prefetch_related(Prefetch("agreements", queryset=in_force.order_by("series", "version"), to_attr="offers"))
        .order_by("holder__slug", "slug")
    )


def catalog(datasets: QuerySet[Dataset], at: datetime.datetime | None = None) -> dict[str, Any]:
    """The DCAT-AP catalogue of the datasets among these that are on offer."""
    base = settings.TIERS_BASE_URL
    return {
        "@context": CONTEXT,
        "@id": f"{base}/api/v1/catalog",
        "@type": "dcat:Catalog",
        "dct:title": {"@value": "Tiers: datasets offered for data altruism", "@language": "en"},
        "dct:description": {
            "@value": (
                "Datasets their holders make available, through Tiers, for objectives of general interest "
                "(Data Governance Act, Chapter IV). Access is by request and a time-limited grant."
            ),
            "@language": "en",
        },
        "dct:publisher": {"@id": f"{base}/", "@type": "foaf:Agent", "foaf:name": "Tiers"},
        "foaf:homepage": {"@id": f"{base}/"},
        "dcat:dataset": [_dataset(dataset) for dataset in offered(datasets, at)],
    }


def _dataset(dataset: Dataset) -> dict[str, Any]:
    iri = odrl.dataset_iri(dataset)
    offers: list[Agreement] = getattr(dataset, "offers", [])
    entry: dict[str, Any] = {
        "@id": iri,
        "@type": "dcat:Dataset",
        "dct:identifier": str(dataset.pk),
        "dct:title": dataset.title,
        "dct:description": dataset.description or dataset.title,
        "dcat:keyword": list(dataset.keywords),
        "dct:publisher": odrl.party(dataset.holder),
        "dct:accessRights": {"@id": RESTRICTED},
        "dct:conformsTo": {
            "@id": f"{iri}#table-schema",
            "@type": "dct:Standard",
            "dct:conformsTo": {"@id": TABLE_SCHEMA_SPEC},
            "rdf:value": {"@value": dataset.table_schema, "@type": "@json"},
        },
        "dpv:hasPurpose": [{"@id": expand(p)} for p in sorted({p for a in offers for p in a.purposes})],
        "dcat:distribution": _distributions(dataset),
        "odrl:hasPolicy": [
            {"@id": odrl.agreement_iri(a), "rdfs:seeAlso": {"@id": odrl.policy_document_url(a)}} for a in offers
        ],
    }
    if dataset.is_personal:
        entry["dpv:hasPersonalData"] = [{"@id": expand(c)} for c in sorted(dataset.data_categories)]
    return entry


def _distributions(dataset: Dataset) -> list[dict[str, Any]]:
    """Hosted: Tiers serves the records to a grant's token; federated: the holder's own API does."""
    iri = odrl.dataset_iri(dataset)
    base = settings.TIERS_BASE_URL
    if dataset.mode == Dataset.Mode.FEDERATED:
        service = {"@type": "dcat:DataService", "dcat:endpointURL": {"@id": dataset.api_base_url}}
        return [
            {
                "@id": f"{iri}#holder-api",
                "@type": "dcat:Distribution",
                "dct:title": "Records from the holder's API, with a grant's access token",
                "dcat:accessURL": {"@id": dataset.api_base_url},
                "dcat:accessService": service,
            }
        ]
    service = {
        "@type": "dcat:DataService",
        "dcat:endpointURL": {"@id": f"{base}/api/v1/"},
        "dcat:endpointDescription": {"@id": f"{base}/api/schema/"},
    }
    return [
        {
            "@id": f"{iri}#records-{media_type.split('/')[1]}",
            "@type": "dcat:Distribution",
            "dct:title": f"Records as {media_type}, read with a grant's access token",
            "dct:description": "Request access; once granted, read /api/v1/grants/{grant}/records.",
            "dcat:accessURL": {"@id": f"{base}/api/v1/grants/"},
            "dcat:accessService": service,
            "dcat:mediaType": {"@id": IANA_MEDIA_TYPES + media_type},
        }
        for media_type in RECORD_MEDIA_TYPES
    ]
