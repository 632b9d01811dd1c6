"""A consent record as a Kantara Consent Receipt v1.1 (KI-CR-v1.1.0), for tools that read that format.

It says what the signed DPV receipt says (consent/receipts.py), in Kantara's fields, about the
transaction that gave the consent or last renewed it. Kantara v1.1 has no field for a consent's
later status: a pause or a withdrawal is in the DPV receipts and the consent's history. What Tiers
has no source for is filled as docs/consent.md says ("Kantara Consent Receipt").
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from broker.dga.profile import operator_profile
from broker.models import Organisation
from consent import receipts
from consent.forms import term_label
from consent.models import CitizenProfile, ConsentEvent, ConsentRecord

VERSION = "KI-CR-v1.1.0"
GIVING_EVENTS = ("given", "renewed")

# The GDPR's special categories (Art. 9) among W3C DPV's personal data terms, with the narrower terms
# a module may name. A module naming one makes the receipt `sensitive`, and lists it in `spiCat`.
SPECIAL_CATEGORIES = frozenset(
    {
        "dpv-pd:Racial", "dpv-pd:Race", "dpv-pd:Ethnicity", "dpv-pd:EthnicOrigin",
        "dpv-pd:PoliticalAffiliation", "dpv-pd:PoliticalOpinion",
        "dpv-pd:Religion", "dpv-pd:ReligiousBelief", "dpv-pd:PhilosophicalBelief",
        "dpv-pd:TradeUnionMembership",
        "dpv-pd:Genetic", "dpv-pd:Biometric",
        "dpv-pd:Health", "dpv-pd:HealthRecord", "dpv-pd:HealthHistory", "dpv-pd:MedicalHealth",
        "dpv-pd:MentalHealth", "dpv-pd:PhysicalHealth",
        "dpv-pd:Sexual", "dpv-pd:SexualOrientation", "dpv-pd:SexualHistory", "dpv-pd:SexualPreference",
    }
)  # fmt: skip


def giving_event(record: ConsentRecord) -> ConsentEvent | None:
    """The event that gave the consent or last renewed it: the transaction a Kantara receipt is about."""
    return record.events.filter(event__in=GIVING_EVENTS).order_by("-at", "-pk").first()


def consent_receipt(record: ConsentRecord, event: ConsentEvent) -> dict[str, Any]:
    """The Kantara receipt of the giving `event`, in the language the citizen reads Tiers in."""
    module = record.module
    language = _language(record)
    special = [term for term in module.data_categories if term in SPECIAL_CATEGORIES]
    with translation.override(language):
        service = {
            "service": module.title_fr if language == "fr" else module.title_en,
            "purposes": [_purpose(record)],
        }
    return {
        "version": VERSION,
        "jurisdiction": module.jurisdiction,
        "consentTimestamp": int(record.given_at.timestamp()),
        "collectionMethod": receipts.COLLECTION_METHOD,
        "consentReceiptID": str(uuid.uuid5(record.id, f"event:{event.pk}")),
        "language": language,
        "piiPrincipalId": receipts.subject_ref(record),
        "piiControllers": [_holder(record.holder), _tiers()],
        "policyUrl": settings.TIERS_BASE_URL + reverse("citizen-module", args=[module.pk]),
        "services": [service],
        "sensitive": bool(special),
        "spiCat": special,
    }


def _language(record: ConsentRecord) -> str:
    """The citizen's language as ISO 639-1 (`fr`, `en`)."""
    profile = CitizenProfile.objects.filter(user_id=record.citizen_id).first()
    return (profile.preferred_language if profile else settings.LANGUAGE_CODE).split("-")[0]


def _purpose(record: ConsentRecord) -> dict[str, Any]:
    module = record.module
    recipients = [term_label(term) for term in module.recipient_categories]
    ends = record.expires_at.astimezone(datetime.UTC).date().isoformat()
    page = settings.TIERS_BASE_URL + reverse("citizen-consent", args=[record.pk])
    purpose: dict[str, Any] = {
        "purpose": term_label(record.purpose),
        "purposeCategory": [record.purpose],
        "consentType": "EXPLICIT",
        "piiCategory": list(module.data_categories),
        "primaryPurpose": False,  # data altruism: never part of the service the holder provides
        "termination": _("Ends on %(date)s (UTC) unless renewed; withdraw it at any time at %(url)s")
        % {"date": ends, "url": page},
        "thirdPartyDisclosure": bool(recipients),
    }
    if recipients:
        purpose["thirdPartyName"] = ", ".join(recipients)
    return purpose


def _holder(holder: Organisation) -> dict[str, Any]:
    """The data holder, the controller that collected the data. Tiers records no telephone numbers."""
    return {
        "piiController": holder.name,
        "onBehalf": False,
        "contact": holder.name,
        "address": {"addressCountry": holder.country},
        "email": holder.contact_email,
        "phone": "",
    }


def _tiers() -> dict[str, Any]:
    """Tiers, which collects and records the consent on the holder's behalf, as its registration names it."""
    profile = operator_profile()
    name = profile.legal_name if profile else "Tiers"
    address = {"streetAddress": profile.address, "addressCountry": profile.country} if profile else {}
    return {
        "piiController": name,
        "onBehalf": True,
        "contact": (profile.contact_person if profile else "") or name,
        "address": {key: value for key, value in address.items() if value},
        "email": profile.contact_email if profile else "",
        "phone": "",
        "piiControllerUrl": (profile.website if profile else "") or settings.TIERS_BASE_URL,
    }
