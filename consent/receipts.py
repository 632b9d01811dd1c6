"""Consent receipts: the ISO/IEC TS 27560 record as W3C DPV JSON-LD, signed as a compact JWS.

Anyone can verify a receipt against /oauth/jwks alone. The same record in the
fields of a Kantara Consent Receipt v1.1 is consent/kantara.py's.
"""

from __future__ import annotations

import datetime
from typing import Any

import rfc8785
from django.conf import settings

from broker import keys
from consent.models import ConsentEvent, ConsentRecord

MEDIA_TYPE = "application/jose"
JWS_TYPE = "tiers-consent-receipt+jws"
COLLECTION_METHOD = "web form (Tiers citizen portal)"

# DPV's consent statuses for the states a record can be in.
DPV_STATUS = {
    ConsentRecord.State.GIVEN: "dpv:ConsentGiven",
    ConsentRecord.State.RENEWED: "dpv:RenewedConsentGiven",
    ConsentRecord.State.PAUSED: "dpv:ConsentPaused",
    ConsentRecord.State.WITHDRAWN: "dpv:ConsentWithdrawn",
    ConsentRecord.State.EXPIRED: "dpv:ConsentExpired",
}


def _time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def subject_ref(record: ConsentRecord) -> str:
    """How receipts name the citizen: an id that means something at Tiers only, never their e-mail address."""
    return f"urn:tiers:citizen:{record.citizen_id}"


def record_document(record: ConsentRecord, event: ConsentEvent) -> dict[str, Any]:
    """The record as it stands after `event`, in ISO 27560's structure with DPV terms."""
    module, holder = record.module, record.holder
    return {
        "@context": ["https://w3id.org/dpv/owl/dpv.jsonld", {"tiers": f"{settings.TIERS_BASE_URL}/ns#"}],
        "@type": "dpv:ConsentRecord",
        "@id": f"urn:uuid:{record.id}",
        "receipt": {"event": event.event, "at": _time(event.at), "audit_entry": event.audit_entry_id},
        "issuer": {"name": "Tiers", "id": settings.TIERS_BASE_URL, "role": "dpv:DataIntermediary"},
        "dataSubject": {"@id": subject_ref(record)},
        "dataController": {
            "name": holder.name,
            "identifier": f"{holder.identifier_scheme}:{holder.legal_identifier}",
            "country": holder.country,
        },
        "hasPurpose": record.purpose,
        "hasPersonalDataCategory": module.data_categories,
        "hasRecipientCategory": module.recipient_categories,
        "hasLegalBasis": "dpv:Consent",
        "hasJurisdiction": module.jurisdiction,
        "hasConsentStatus": DPV_STATUS[ConsentRecord.State(record.state)],
        "method": COLLECTION_METHOD,
        "notice": {
            "module": module.slug,
            "version": module.version,
            "sha256": module.notice_hash,
            "title": {"en": module.title_en, "fr": module.title_fr},
        },
        "givenAt": _time(record.given_at),
        "expiresAt": _time(record.expires_at),
    }


def sign(record: ConsentRecord, event: ConsentEvent) -> str:
    """The receipt of one event: a compact JWS over the RFC 8785 JSON of the record document."""
    return keys.sign_jws(rfc8785.dumps(record_document(record, event)), typ=JWS_TYPE)
