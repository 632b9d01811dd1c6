"""The DCAT-AP catalogue: only datasets on offer, each with its distributions and policies."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.test import APIClient

from broker.models import Organisation, User
from consent.models import ConsentModule
from sharing import dcat, odrl, services
from sharing.models import Agreement, Dataset
from sharing.vocabulary import expand
from tests.sharing.conftest import RESEARCH, TRIPS_SCHEMA, agreement_in_force, terms
from tests.sharing.test_odrl import undefined_terms

DCAT_TERMS: set[str] = set()  # the catalogue's context is all prefixes


def catalogued(api: APIClient) -> dict[str, dict[str, Any]]:
    response = api.get("/api/v1/catalog")
    assert response.status_code == 200
    return {entry["dct:identifier"]: entry for entry in response.json()["dcat:dataset"]}


def federated_dataset(holder_admin: User, holder: Organisation) -> Dataset:
    return services.dataset_register(
        by=holder_admin,
        holder=holder,
        slug="live-trips",
        title="Live trips",
        mode=Dataset.Mode.FEDERATED,
        api_base_url="https://api.volta.example/tiers",
        table_schema=TRIPS_SCHEMA,
        subject_key_field="traveller",
        personal_fields=["traveller", "origin", "destination"],
        data_categories=["dpv-pd:Location"],
    )


def test_anyone_reads_the_catalogue_as_json_ld(api: APIClient, agreement: Agreement) -> None:
    response = api.get("/api/v1/catalog")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/ld+json")
    document = response.json()
    assert document["@type"] == "dcat:Catalog"
    assert document["dct:publisher"]["@id"] == f"{settings.TIERS_BASE_URL}/"
    assert undefined_terms(document, known=DCAT_TERMS) == []


def test_a_hosted_dataset_under_an_agreement_in_force_is_offered_through_grants(
    api: APIClient, agreement: Agreement, trips: Dataset
) -> None:
    entry = catalogued(api)[str(trips.pk)]

    assert entry["@id"] == f"{settings.TIERS_BASE_URL}/api/v1/datasets/{trips.pk}"
    assert entry["dct:title"] == "Trips"
    assert entry["dct:publisher"]["foaf:name"] == trips.holder.name
    assert entry["dct:publisher"]["dct:identifier"] == f"siren:{trips.holder.legal_identifier}"
    assert entry["dct:conformsTo"]["rdf:value"]["@value"] == TRIPS_SCHEMA
    assert entry["dpv:hasPersonalData"] == [{"@id": expand("dpv-pd:Location")}]
    media_types = {d["dcat:mediaType"]["@id"].rsplit("media-types/", 1)[1] for d in entry["dcat:distribution"]}
    assert media_types == {"application/x-ndjson", "text/csv"}
    assert {d["dcat:accessURL"]["@id"] for d in entry["dcat:distribution"]} == {
        f"{settings.TIERS_BASE_URL}/api/v1/grants/"
    }
    assert entry["odrl:hasPolicy"] == [
        {
            "@id": odrl.agreement_iri(agreement),
            "rdfs:seeAlso": {"@id": f"{settings.TIERS_BASE_URL}/api/v1/agreements/{agreement.pk}/odrl"},
        }
    ]


def test_a_federated_dataset_is_reached_at_the_holders_api(
    api: APIClient, holder_admin: User, operator: User, holder: Organisation, module: ConsentModule
) -> None:
    live = federated_dataset(holder_admin, holder)
    agreement_in_force(holder_admin, operator, [live])

    [distribution] = catalogued(api)[str(live.pk)]["dcat:distribution"]

    assert distribution["dcat:accessService"]["dcat:endpointURL"] == {"@id": "https://api.volta.example/tiers"}
    assert "dcat:mediaType" not in distribution


def test_a_dataset_lists_only_the_agreements_in_force(
    api: APIClient, agreement: Agreement, holder_admin: User, operator: User, trips: Dataset
) -> None:
    draft = services.agreement_propose(by=holder_admin, holder=trips.holder, terms=terms([trips], title="Draft"))
    second = agreement_in_force(holder_admin, operator, [trips], purposes=[RESEARCH])

    entry = catalogued(api)[str(trips.pk)]

    policies = {policy["@id"] for policy in entry["odrl:hasPolicy"]}
    assert policies == {odrl.agreement_iri(agreement), odrl.agreement_iri(second)}
    assert odrl.agreement_iri(draft) not in policies


def test_a_dataset_under_a_draft_agreement_only_is_absent(
    api: APIClient, holder_admin: User, trips: Dataset, module: ConsentModule
) -> None:
    services.agreement_propose(by=holder_admin, holder=trips.holder, terms=terms([trips]))

    assert str(trips.pk) not in catalogued(api)


def test_a_withdrawn_dataset_is_absent(
    api: APIClient, agreement: Agreement, holder_admin: User, trips: Dataset
) -> None:
    assert str(trips.pk) in catalogued(api)
    services.dataset_withdraw(by=holder_admin, dataset=trips, reason="the network changed operator")

    assert str(trips.pk) not in catalogued(api)


def test_a_dataset_whose_agreement_was_terminated_is_absent(
    api: APIClient, agreement: Agreement, holder_admin: User, trips: Dataset
) -> None:
    services.agreement_terminate(by=holder_admin, agreement=agreement, reason="the programme ended")

    assert str(trips.pk) not in catalogued(api)


def test_a_dataset_of_a_holder_no_longer_verified_is_absent(
    api: APIClient, agreement: Agreement, trips: Dataset
) -> None:
    Organisation.objects.filter(pk=trips.holder_id).update(verification_state=Organisation.Verification.EXCLUDED)

    assert str(trips.pk) not in catalogued(api)


def test_an_operator_sees_the_same_catalogue_as_anyone(
    api: APIClient, agreement: Agreement, operator: User, holder_admin: User, holder: Organisation
) -> None:
    federated_dataset(holder_admin, holder)  # registered, under no agreement

    assert dcat.catalog(Dataset.objects.all()) == api.get("/api/v1/catalog").json()
    assert list(catalogued(api)) == [str(agreement.datasets.get().pk)]
