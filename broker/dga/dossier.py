"""The registration dossier: what DGA Art. 19(4) (data altruism) or Art. 11(6) (intermediation) asks, from live data.

Everything here is read from the tables as they stand now (the operator
profile, the agreements in force, their datasets and consent modules, the
transparency log's newest checkpoint): it is a snapshot to file with the
competent authority, not a record of the past.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.utils import timezone

from broker.dga import reports
from broker.dga.models import OperatorProfile
from broker.dga.profile import operator_profile
from broker.errors import NotFound
from consent.models import ConsentModule
from sharing.models import Agreement, Dataset
from sharing.vocabulary import GENERAL_INTEREST_PURPOSES

CONSENT_METHOD = (
    "Citizens link their identity at a holder with a one-time code, then consent purpose by purpose in the"
    " Tiers portal, on modules shaped like the European data altruism consent form; each consent is an"
    " ISO/IEC TS 27560 record with a signed receipt, and is withdrawn in one click (GDPR Art. 7(3))."
)
# What Art. 19(4) asks that an operator may not have filled in yet: named, to be completed.
REQUIRED_FIELDS = {
    "legal_form": "legal_form",
    "statutes": "statutes_url",
    "main_sources_of_income": "income_sources",
    "contact_person": "contact_person",
}


def agreements_now() -> list[Agreement]:
    """The agreement versions in force now."""
    now = timezone.now()
    found = Agreement.objects.filter(state=Agreement.State.ACTIVE, valid_from__lte=now, valid_until__gt=now)
    return list(found.select_related("holder").prefetch_related("datasets").order_by("holder__slug", "title"))


def _agreement(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": str(agreement.pk),
        "title": agreement.title,
        "version": agreement.version,
        "holder": reports.organisation_ref(agreement.holder),
        "purposes": agreement.purposes,
        "recipient_categories": agreement.recipient_categories,
        "consent_modules": list(agreement.terms.get("consent_modules", [])),
        "approval_mode": agreement.approval_mode,
        "conditions": agreement.conditions,
        "valid_from": reports.stamp(agreement.valid_from),
        "valid_until": reports.stamp(agreement.valid_until),
        "content_hash": agreement.content_hash,
    }


def _datasets(agreements: list[Agreement]) -> list[dict[str, Any]]:
    offered: dict[str, tuple[Dataset, list[str]]] = {}
    for agreement in agreements:
        for dataset in agreement.datasets.all():
            if dataset.state == Dataset.State.ACTIVE:
                offered.setdefault(str(dataset.pk), (dataset, []))[1].append(str(agreement.pk))
    return [
        {
            "id": key,
            "holder": reports.organisation_ref(dataset.holder),
            "slug": dataset.slug,
            "title": dataset.title,
            "mode": dataset.mode,
            "personal": dataset.is_personal,
            "data_categories": list(dataset.data_categories),
            "agreements": ids,
        }
        for key, (dataset, ids) in sorted(offered.items(), key=lambda item: (item[1][0].holder.slug, item[1][0].slug))
    ]


def _consent_modules(agreements: list[Agreement]) -> list[dict[str, Any]]:
    """The newest unretired version of each module an agreement in force names."""
    wanted = {(a.holder_id, slug) for a in agreements for slug in a.terms.get("consent_modules", [])}
    modules: dict[tuple[int, str], ConsentModule] = {}
    for module in ConsentModule.objects.filter(
        holder_id__in={h for h, _ in wanted}, retired_at__isnull=True
    ).select_related("holder"):
        key = (module.holder_id, module.slug)
        if key in wanted and (key not in modules or module.version > modules[key].version):
            modules[key] = module
    return [
        {
            "holder": module.holder.slug,
            "slug": module.slug,
            "version": module.version,
            "title": {"en": module.title_en, "fr": module.title_fr},
            "purposes": list(module.purposes),
            "data_categories": list(module.data_categories),
            "recipient_categories": list(module.recipient_categories),
            "duration_days": module.duration_days,
            "jurisdiction": module.jurisdiction,
            "notice_sha256": module.notice_hash,
        }
        for _, module in sorted(modules.items(), key=lambda item: (item[1].holder.slug, item[1].slug))
    ]


def technical_means() -> dict[str, Any]:
    return {
        "encryption_at_rest": reports.ENCRYPTION_AT_REST,
        "pseudonyms": reports.PSEUDONYMS,
        "consent_receipts": "compact JWS (ES256) verifiable against the published JWKS",
        "transparency_log": {
            "design": "append-only Merkle tree (RFC 9162 hashing) with signed checkpoints and public proofs",
            **reports.transparency_log(timezone.now()),
        },
    }


def _identity(profile: OperatorProfile) -> dict[str, Any]:
    return {
        "name": profile.legal_name,
        "legal_form": profile.legal_form,
        "statutes": profile.statutes_url,
        "main_sources_of_income": profile.income_sources,
        "legal_status": {
            "registration_status": profile.status,
            "registered_at": profile.registered_at.isoformat() if profile.registered_at else None,
            "union_register_url": profile.union_register_url,
        },
        "national_legal_entity": {
            "country": profile.country,
            "registration_number": profile.registration_number,
            "competent_authority": profile.competent_authority,
        },
        "main_establishment": {"address": profile.address, "country": profile.country},
        "website": profile.website,
        "contact": {"email": profile.contact_email, "person": profile.contact_person},
    }


def dossier() -> dict[str, Any]:
    """The registration content for the operator's role, generated now."""
    profile = operator_profile()
    if profile is None:
        raise NotFound("No registration is recorded: an operator fills in the operator profile first.")
    agreements = agreements_now()
    purposes = Counter(purpose for agreement in agreements for purpose in agreement.purposes)
    datasets = _datasets(agreements)
    altruism = profile.role == OperatorProfile.Role.DATA_ALTRUISM
    body: dict[str, Any] = {
        "regulation": "Regulation (EU) 2022/868, " + ("Art. 19(4)" if altruism else "Art. 11(6)"),
        "role": profile.role,
        "generated_at": reports.stamp(timezone.now()),
        **_identity(profile),
        "objectives_of_general_interest": [
            {"purpose": p, "label": GENERAL_INTEREST_PURPOSES.get(p, ""), "agreements": purposes[p]}
            for p in sorted(purposes)
        ],
        "nature_of_data": {
            "personal_data_categories": sorted({c for d in datasets if d["personal"] for c in d["data_categories"]}),
            "personal_datasets": sum(1 for d in datasets if d["personal"]),
            "non_personal_datasets": sum(1 for d in datasets if not d["personal"]),
        },
        "technical_means": technical_means(),
        "not_recorded": [name for name, attribute in REQUIRED_FIELDS.items() if not getattr(profile, attribute)],
    }
    activities = {
        "datasets": datasets,
        "agreements": [_agreement(agreement) for agreement in agreements],
        "consent": {"method": CONSENT_METHOD, "modules": _consent_modules(agreements)},
    }
    if altruism:
        body["data_altruism_activities"] = activities
    else:
        body["intermediation_service"] = {
            "description": "Intermediation between data holders and data users (Art. 10(a)) and between data"
            " subjects and data users (Art. 10(b)), for general-interest purposes only.",
            "start_date": profile.registered_at.isoformat() if profile.registered_at else None,
            **activities,
        }
    return body
