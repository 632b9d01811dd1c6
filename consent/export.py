"""Everything Tiers holds about a citizen (GDPR Art. 15 and 20), as one JSON document."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from broker.models import AuditEntry, User
from consent.models import CitizenProfile, ConsentEvent, IdentityLink
from consent.selectors import consents_of


def citizen_export(citizen: User) -> dict[str, Any]:
    """The citizen's account, links, consents with their history and receipts, and the log entries about them."""
    profile = CitizenProfile.objects.filter(user=citizen).first()
    entries = AuditEntry.objects.filter(body__citizen_id=citizen.pk).select_related("body").order_by("pk")
    return {
        "exported_at": timezone.now(),
        "account": {
            "username": citizen.username,
            "email": citizen.email,
            "date_joined": citizen.date_joined,
            "display_name": profile.display_name if profile else "",
            "preferred_language": profile.preferred_language if profile else "",
        },
        "identity_links": [
            {
                "holder": link.holder.slug,
                "subject_ref": link.subject_ref,
                "linked_at": link.linked_at,
                "unlinked_at": link.unlinked_at,
            }
            for link in IdentityLink.objects.filter(citizen=citizen).select_related("holder")
        ],
        "consents": [
            {
                "id": record.pk,
                "holder": record.holder.slug,
                "module": record.module.slug,
                "module_version": record.module.version,
                "purpose": record.purpose,
                "state": record.state,
                "given_at": record.given_at,
                "expires_at": record.expires_at,
                "events": [
                    {"event": e.event, "state": e.state, "at": e.at, "receipt": e.receipt}
                    for e in ConsentEvent.objects.filter(record=record)
                ],
            }
            for record in consents_of(citizen)
        ],
        "audit_entries": [
            {
                "leaf_index": entry.leaf_index,
                "leaf_hash": base64.b64encode(bytes(entry.leaf_hash)).decode(),
                "event": json.loads(bytes(entry.body.canonical)),
            }
            for entry in entries
        ],
    }


def citizen_export_json(citizen: User) -> bytes:
    """The export as `GET /api/v1/me/export` answers it: the same renderer, byte for byte."""
    return JSONRenderer().render(citizen_export(citizen))


def filename() -> str:
    """The export file's name, with the day it was made."""
    return f"tiers-export-{timezone.localdate().isoformat()}.json"
