"""Demo data of the consent app: holders' modules, citizens' links and consents."""

from __future__ import annotations

from typing import Any

from broker.models import Organisation, User
from consent import services
from consent.models import ConsentModule, ConsentRecord, IdentityLink

RESEARCH = "dpv:NonCommercialResearch"
PUBLIC_BENEFIT = "dpv:PublicBenefit"

MODULES: dict[str, tuple[str, dict[str, Any]]] = {
    "volta-energie": (
        "energy",
        {
            "title_en": "Your electricity use, for climate research and public policy",
            "title_fr": "Votre consommation d'électricité, pour la recherche sur le climat et l'action publique",
            "notice_en": "Volta Énergie shares your daily electricity readings, under a pseudonym, "
            "with research bodies and public authorities that work on the energy transition.",
            "notice_fr": "Volta Énergie partage vos relevés quotidiens d'électricité, sous un pseudonyme, "
            "avec des organismes de recherche et des autorités publiques "
            "qui travaillent sur la transition énergétique.",
            "risks_en": "Daily readings can reveal when a home is empty. They are never shared with your name.",
            "risks_fr": "Des relevés quotidiens peuvent révéler quand un logement est vide. "
            "Ils ne sont jamais partagés avec votre nom.",
            "data_categories": ["dpv-pd:EnergyConsumption"],
            "purposes": [RESEARCH, PUBLIC_BENEFIT],
            "recipient_categories": ["research-body", "public-authority"],
            "duration_days": 365,
            "jurisdiction": "EU",
        },
    ),
    "ligne-bleue": (
        "mobility",
        {
            "title_en": "Your trips, for better public transport",
            "title_fr": "Vos trajets, pour de meilleurs transports publics",
            "notice_en": "Ligne Bleue shares the start, end and time of your trips, under a pseudonym, "
            "with research bodies and the city to plan public transport.",
            "notice_fr": "Ligne Bleue partage le départ, l'arrivée et l'heure de vos trajets, sous un pseudonyme, "
            "avec des organismes de recherche et la ville pour organiser les transports publics.",
            "risks_en": "Trips can reveal where you live and work. Exact times are rounded to the quarter hour.",
            "risks_fr": "Des trajets peuvent révéler où vous habitez et travaillez. "
            "Les heures sont arrondies au quart d'heure.",
            "data_categories": ["dpv-pd:Location", "dpv-pd:TravelHistory"],
            "purposes": [RESEARCH, PUBLIC_BENEFIT],
            "recipient_categories": ["research-body", "public-authority"],
            "duration_days": 365,
            "jurisdiction": "EU",
        },
    ),
}

# citizen -> (holder slug, purpose, what happens after giving it)
CONSENTS: dict[str, list[tuple[str, str, str]]] = {
    "alice": [
        ("ligne-bleue", RESEARCH, "given"),
        ("ligne-bleue", PUBLIC_BENEFIT, "given"),
        ("volta-energie", RESEARCH, "given"),
        ("volta-energie", PUBLIC_BENEFIT, "given"),
    ],
    "bruno": [
        ("ligne-bleue", RESEARCH, "paused"),
        ("ligne-bleue", PUBLIC_BENEFIT, "given"),
        ("volta-energie", RESEARCH, "withdrawn"),
    ],
    "chloe": [
        ("ligne-bleue", PUBLIC_BENEFIT, "withdrawn"),
        ("ligne-bleue", RESEARCH, "given"),
        ("volta-energie", PUBLIC_BENEFIT, "paused"),
    ],
}


def seed_consents(holders: dict[str, tuple[Organisation, User]], citizens: list[User]) -> None:
    """Publish the modules, link every citizen with both holders, and give the demo consents once."""
    modules = {
        slug: services.module_publish(actor=admin, holder=holder, slug=MODULES[slug][0], content=MODULES[slug][1])
        for slug, (holder, admin) in holders.items()
        if slug in MODULES
    }
    for number, citizen in enumerate(citizens, start=1):
        for slug, module in modules.items():
            _link(citizen, module.holder, f"{slug[:2].upper()}-{number:05d}")
        if ConsentRecord.objects.filter(citizen=citizen).exists():
            continue
        for slug, purpose, outcome in CONSENTS.get(citizen.username, []):
            _consent(citizen, modules[slug], purpose, outcome)


def _link(citizen: User, holder: Organisation, subject_ref: str) -> None:
    if IdentityLink.objects.filter(citizen=citizen, holder=holder, unlinked_at__isnull=True).exists():
        return
    _, code = services.link_code_issue(actor="system", holder=holder, subject_ref=subject_ref)
    services.link_redeem(citizen=citizen, code=code)


def _consent(citizen: User, module: ConsentModule, purpose: str, outcome: str) -> None:
    (record,) = services.consent_give(citizen=citizen, module=module, purposes=[purpose])
    if outcome == "paused":
        services.consent_pause(citizen=citizen, record=record)
    elif outcome == "withdrawn":
        services.consent_withdraw(citizen=citizen, record=record)
