"""Consent fixtures: a holder's module, a citizen linked with the holder."""

from __future__ import annotations

from typing import Any

import pytest

from broker.models import Organisation, User
from consent import services
from consent.models import ConsentModule, IdentityLink

MODULE_CONTENT: dict[str, Any] = {
    "title_en": "Your energy use, for research and public policy",
    "title_fr": "Votre consommation d'énergie, pour la recherche et les politiques publiques",
    "notice_en": "Volta Énergie shares your half-hourly meter readings, pseudonymised.",
    "notice_fr": "Volta Énergie partage vos relevés semi-horaires, pseudonymisés.",
    "risks_en": "Readings can reveal when you are at home.",
    "risks_fr": "Les relevés peuvent révéler quand vous êtes chez vous.",
    "data_categories": ["dpv-pd:EnergyConsumption"],
    "purposes": ["dpv:ScientificResearch", "dpv:PublicPolicy"],
    "recipient_categories": ["research", "public-authority"],
    "duration_days": 365,
    "jurisdiction": "EU",
}


@pytest.fixture
def module(holder: Organisation, holder_admin: User) -> ConsentModule:
    return services.module_publish(actor=holder_admin, holder=holder, slug="energy", content=MODULE_CONTENT)


def link(citizen: User, holder: Organisation, subject_ref: str) -> IdentityLink:
    _, code = services.link_code_issue(actor="system", holder=holder, subject_ref=subject_ref)
    return services.link_redeem(citizen=citizen, code=code)


@pytest.fixture
def alice_linked(alice: User, holder: Organisation) -> IdentityLink:
    return link(alice, holder, "CUST-0001")


@pytest.fixture
def bob_linked(bob: User, holder: Organisation) -> IdentityLink:
    return link(bob, holder, "CUST-0002")
