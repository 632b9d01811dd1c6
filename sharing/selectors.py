"""Reads of data sharing that more than one view needs."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from broker.api_base import by_id
from broker.errors import NotFound
from broker.models import AuditEntry, User
from broker.oauth.tokens import ClientPrincipal
from sharing.models import DeliverySubject, Grant


def grant_for_holder(principal: ClientPrincipal, grant_id: Any) -> Grant:
    """A grant on the calling holder's data; any other answers not found."""
    grants = Grant.objects.select_related("dataset", "organisation", "agreement")
    grant = by_id(grants.filter(dataset__holder=principal.caller.organisation), grant_id)
    if grant is None:
        raise NotFound("No such grant for this holder.")
    return grant


def accesses_of(citizen: User) -> QuerySet[DeliverySubject]:
    """The deliveries that included the citizen, newest first, each with its audit entry's leaf index."""
    leaf = AuditEntry.objects.filter(pk=OuterRef("delivery__audit_entry_id")).values("leaf_index")
    return (
        DeliverySubject.objects.filter(citizen=citizen)
        .select_related("delivery__grant__organisation", "delivery__grant__dataset__holder")
        .annotate(leaf_index=Subquery(leaf))
        .order_by("-delivery__at", "-pk")
    )
