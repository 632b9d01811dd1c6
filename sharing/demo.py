"""Demo data of the sharing app: two hosted datasets, their agreements, and grants for both data users.

The mobility dataset holds trips of the demo citizens (under the subject
references their identity links name) and of many synthetic travellers; the
city (public authority, public benefit) and the lab (research body,
non-commercial research) each hold an approved grant on it, so the demo
citizens' consents visibly decide what each grant delivers.
"""

from __future__ import annotations

import csv
import datetime
import io
import random
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from broker.models import Organisation, User
from consent.demo import PUBLIC_BENEFIT, RESEARCH
from consent.models import IdentityLink
from sharing import ingest, services
from sharing.models import Agreement, Dataset, Grant, Upload

SYNTHETIC_TRAVELLERS = 400
SYNTHETIC_HOMES = 50
STOPS = ["Gare", "Mairie", "Campus", "Hôpital", "Port", "Marché", "Stade", "Zone Nord", "Lycée", "Piscine"]
MODES = ["bus", "tram", "bike", "walk", "car"]

DATASETS: dict[str, dict[str, Any]] = {
    "ligne-bleue": {
        "slug": "trips",
        "title": "Trips on the Ligne Bleue network",
        "description": "One row per trip: day, stops, distance and mode; times rounded to the quarter hour.",
        "keywords": ["mobility", "public transport"],
        "table_schema": {
            "fields": [
                {"name": "traveller", "type": "string", "constraints": {"required": True}},
                {"name": "day", "type": "date", "constraints": {"required": True}},
                {"name": "departure", "type": "string", "description": "HH:MM, rounded to 15 minutes"},
                {"name": "origin", "type": "string"},
                {"name": "destination", "type": "string"},
                {"name": "km", "type": "number", "constraints": {"minimum": 0}},
                {"name": "mode", "type": "string", "constraints": {"enum": MODES}},
            ]
        },
        "subject_key_field": "traveller",
        "personal_fields": ["traveller", "origin", "destination", "departure"],
        "data_categories": ["dpv-pd:Location", "dpv-pd:TravelHistory"],
        "module": "mobility",
    },
    "volta-energie": {
        "slug": "daily-consumption",
        "title": "Daily electricity consumption",
        "description": "One row per home and day: kWh used and the tariff.",
        "keywords": ["energy", "climate"],
        "table_schema": {
            "fields": [
                {"name": "meter", "type": "string", "constraints": {"required": True}},
                {"name": "day", "type": "date", "constraints": {"required": True}},
                {"name": "kwh", "type": "number", "constraints": {"minimum": 0}},
                {"name": "tariff", "type": "string"},
            ]
        },
        "subject_key_field": "meter",
        "personal_fields": ["meter"],
        "data_categories": ["dpv-pd:EnergyConsumption"],
        "module": "energy",
    },
}

# data user slug -> (purpose, fields of the mobility dataset it asks for)
MOBILITY_GRANTS = {
    "ville-de-marlieux": (PUBLIC_BENEFIT, ["day", "departure", "origin", "destination", "mode"]),
    "labo-mobilites": (RESEARCH, ["day", "origin", "destination", "km", "mode"]),
}
JUSTIFICATIONS = {
    PUBLIC_BENEFIT: "Plan the bus network redesign of 2027 from the trips residents actually make.",
    RESEARCH: "Study how trip lengths and modes shift after the new tram line, for a public report.",
}


def seed_sharing(
    holders: dict[str, tuple[Organisation, User]], users: dict[str, tuple[Organisation, User]], operator: User
) -> list[dict[str, str]]:
    """Datasets, their data, agreements and the mobility grants; returns the grants for the credentials file."""
    rng = random.Random(2026)  # noqa: S311 (synthetic data, reproducible)
    datasets: dict[str, Dataset] = {}
    for slug, (holder, admin) in holders.items():
        spec = DATASETS.get(slug)
        if spec is None:
            continue
        dataset = holder.datasets.filter(slug=spec["slug"]).first() or _register(holder, admin, spec)
        if not dataset.records.exists():
            rows = _trips(holder, rng) if spec["slug"] == "trips" else _consumption(holder, rng)
            _load(admin, dataset, rows, spec["table_schema"])
        if not dataset.agreements.filter(state=Agreement.State.ACTIVE).exists():
            _agree(holder, admin, operator, dataset, spec["module"])
        datasets[slug] = dataset
    granted = []
    mobility = datasets.get("ligne-bleue")
    if mobility is not None:
        holder, holder_admin = holders["ligne-bleue"]
        for slug, (purpose, fields) in MOBILITY_GRANTS.items():
            organisation, admin = users[slug]
            grant = Grant.objects.active().filter(organisation=organisation, dataset=mobility).first()
            if grant is None:
                grant = _request_and_approve(admin, organisation, holder_admin, mobility, purpose, fields)
            granted.append(
                {
                    "id": str(grant.pk),
                    "organisation": organisation.slug,
                    "dataset": f"{holder.slug}/{mobility.slug}",
                    "dataset_id": str(mobility.pk),
                    "purpose": grant.purpose,
                }
            )
    return granted


def _register(holder: Organisation, admin: User, spec: dict[str, Any]) -> Dataset:
    return services.dataset_register(
        by=admin,
        holder=holder,
        slug=spec["slug"],
        title=spec["title"],
        description=spec["description"],
        keywords=spec["keywords"],
        mode=Dataset.Mode.HOSTED,
        table_schema=spec["table_schema"],
        subject_key_field=spec["subject_key_field"],
        personal_fields=spec["personal_fields"],
        data_categories=spec["data_categories"],
    )


def _citizen_refs(holder: Organisation) -> list[str]:
    return list(
        IdentityLink.objects.filter(holder=holder, unlinked_at__isnull=True)
        .order_by("subject_ref")
        .values_list("subject_ref", flat=True)
    )


def _trips(holder: Organisation, rng: random.Random) -> Iterator[dict[str, Any]]:
    prefix = holder.slug[:2].upper()
    travellers = [(ref, 20) for ref in _citizen_refs(holder)]
    travellers += [(f"{prefix}-{90000 + n:05d}", rng.randint(2, 14)) for n in range(SYNTHETIC_TRAVELLERS)]
    start = datetime.date(2026, 9, 1)
    for ref, count in travellers:
        home, work = rng.sample(STOPS, 2)
        for trip in range(count):
            outbound = trip % 2 == 0
            yield {
                "traveller": ref,
                "day": (start + datetime.timedelta(days=trip // 2)).isoformat(),
                "departure": f"{rng.choice([7, 8, 9, 17, 18]):02d}:{rng.choice([0, 15, 30, 45]):02d}",
                "origin": home if outbound else work,
                "destination": work if outbound else home,
                "km": round(rng.uniform(0.8, 18.0), 1),
                "mode": rng.choice(MODES),
            }


def _consumption(holder: Organisation, rng: random.Random) -> Iterator[dict[str, Any]]:
    prefix = holder.slug[:2].upper()
    meters = _citizen_refs(holder) + [f"{prefix}-{90000 + n:05d}" for n in range(SYNTHETIC_HOMES)]
    start = datetime.date(2026, 9, 1)
    for meter in meters:
        base = rng.uniform(4, 14)
        for day in range(60):
            yield {
                "meter": meter,
                "day": (start + datetime.timedelta(days=day)).isoformat(),
                "kwh": round(base * rng.uniform(0.7, 1.4), 2),
                "tariff": rng.choice(["base", "peak-off-peak"]),
            }


def _load(admin: User, dataset: Dataset, rows: Iterator[dict[str, Any]], schema: dict[str, Any]) -> None:
    """Upload the rows as CSV through the ingestion path a holder uses, and load them now."""
    names = [field["name"] for field in schema["fields"]]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    received = ingest.upload_receive(
        by=admin,
        dataset=dataset,
        body=io.BytesIO(text.getvalue().encode()),
        content_type="text/csv",
        on_error=Upload.OnError.ALL_OR_NOTHING,
        replace=False,
    )
    loaded = ingest.ingest(str(received.pk))
    if loaded.state != Upload.State.LOADED:
        raise RuntimeError(f"the demo's {dataset.slug} did not load: {loaded.failure or loaded.rows_rejected}")


def _agree(holder: Organisation, admin: User, operator: User, dataset: Dataset, module: str) -> Agreement:
    now = timezone.now()
    terms = services.AgreementTerms(
        title=f"{holder.name}: data altruism for the general interest",
        datasets=[dataset],
        purposes=[RESEARCH, PUBLIC_BENEFIT],
        recipient_categories=["public-authority", "research-body"],
        consent_modules=[module],
        approval_mode=Agreement.ApprovalMode.HOLDER,
        valid_from=now - datetime.timedelta(days=1),
        valid_until=now + datetime.timedelta(days=3 * 365),
        conditions={"retention_days_max": 365, "grant_days_max": 365},
    )
    draft = services.agreement_propose(by=admin, holder=holder, terms=terms)
    signed = services.agreement_sign(by=admin, agreement=draft, content_hash=draft.content_hash)
    return services.agreement_countersign(by=operator, agreement=signed, content_hash=signed.content_hash)


def _request_and_approve(
    admin: User, organisation: Organisation, holder_admin: User, dataset: Dataset, purpose: str, fields: list[str]
) -> Grant:
    now = timezone.now()
    request = services.access_request_submit(
        by=admin,
        organisation=organisation,
        items=[services.RequestItem(dataset=dataset, fields=fields)],
        purpose=purpose,
        justification=JUSTIFICATIONS[purpose],
        starts_at=now,
        ends_at=now + datetime.timedelta(days=180),
        retention_days=180,
    )
    services.access_request_review(
        by=holder_admin, access_request=request, approve=True, reason="Matches the agreement; demo approval."
    )
    return request.grants.get()
