"""Reads of the consent app, always scoped to the citizen asking."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from broker.api_base import uuid_or_none
from broker.errors import NotFound
from broker.models import User
from consent.models import ConsentModule, ConsentRecord, IdentityLink


def consents_of(citizen: User) -> QuerySet[ConsentRecord]:
    return ConsentRecord.objects.filter(citizen=citizen).select_related("module", "holder").order_by("-given_at")


def consent_of(citizen: User, consent_id: Any) -> ConsentRecord:
    """The citizen's own consent; any other id, valid or not, is not found."""
    wanted = uuid_or_none(consent_id)
    record = consents_of(citizen).filter(pk=wanted).first() if wanted else None
    if record is None:
        raise NotFound("No such consent.")
    return record


def links_of(citizen: User) -> QuerySet[IdentityLink]:
    return IdentityLink.objects.filter(citizen=citizen, unlinked_at__isnull=True).select_related("holder")


def current_modules() -> QuerySet[ConsentModule]:
    """Every module's current version, as the public may read them."""
    return (
        ConsentModule.objects.filter(retired_at__isnull=True).select_related("holder").order_by("holder__name", "slug")
    )


def modules_for(citizen: User) -> QuerySet[ConsentModule]:
    """Current modules of the holders the citizen is linked with."""
    return current_modules().filter(holder__in=links_of(citizen).values("holder"))
