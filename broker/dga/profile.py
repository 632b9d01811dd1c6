"""The operator's registration: the one OperatorProfile row, or none before an operator fills it in."""

from __future__ import annotations

import datetime

from broker.dga.models import OperatorProfile

DEMO_PROFILE = {
    "legal_name": "Tiers — démonstration",
    "role": OperatorProfile.Role.DATA_ALTRUISM,
    "registration_number": "DEMO-FR-DAO-0001",
    "competent_authority": "Autorité de démonstration (demo)",
    "legal_form": "association loi 1901 (demo)",
    "statutes_url": "https://tiers.example/statuts.pdf",
    "income_sources": "Membership fees of the member cities and public grants; no fee for data users (demo).",
    "contact_person": "Délégué à la protection des données (demo)",
    "country": "FR",
    "address": "1 place de la Mairie, 00000 Marlieux (demo)",
    "contact_email": "dpo@tiers.example",
    "website": "https://tiers.example",
    "union_register_url": "https://register.example/data-altruism/DEMO-FR-DAO-0001",
    "status": OperatorProfile.Status.ACTIVE,
}


def operator_profile() -> OperatorProfile | None:
    """The registration, if an operator has recorded it."""
    return OperatorProfile.objects.order_by("pk").first()


def seed_demo_profile() -> OperatorProfile:
    """The demo's registration, created once and left as an operator edits it."""
    found = operator_profile()
    if found is not None:
        return found
    return OperatorProfile.objects.create(registered_at=datetime.date(2026, 1, 15), **DEMO_PROFILE)
