"""Whose data a use may include: the subjects whose consent is active for it, at this moment.

A use is a holder, a purpose, a recipient category and the data categories of a
dataset. A subject counts when its citizen is linked with the holder and holds
an active consent (given or renewed, not expired) to that purpose under a
module the agreement names, whose recipient and data categories cover the use.
The modules are resolved first (there are few); the rest is one query, the same
on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from consent.models import ConsentModule, ConsentRecord, IdentityLink


@dataclass(frozen=True)
class Use:
    holder_id: int
    purpose: str
    recipient_category: str
    data_categories: tuple[str, ...]
    module_slugs: tuple[str, ...]


def covering_modules(use: Use) -> list[int]:
    """Every version of the agreement's modules that covers the use."""
    modules = ConsentModule.objects.filter(holder_id=use.holder_id, slug__in=use.module_slugs)
    return [
        module.pk
        for module in modules
        if use.purpose in module.purposes
        and use.recipient_category in module.recipient_categories
        and set(use.data_categories) <= set(module.data_categories)
    ]


def consenting_links(use: Use) -> QuerySet[IdentityLink]:
    """The live identity links of citizens who consent to the use right now."""
    consenting = ConsentRecord.objects.filter(
        holder_id=use.holder_id,
        purpose=use.purpose,
        state__in=ConsentRecord.ACTIVE_STATES,
        expires_at__gt=timezone.now(),
        module_id__in=covering_modules(use),
    ).values("citizen_id")
    return IdentityLink.objects.filter(
        holder_id=use.holder_id, unlinked_at__isnull=True, citizen_id__in=consenting
    ).order_by()


def coverage(use: Use) -> int:
    """How many linked subjects consent to the use right now."""
    return consenting_links(use).count()


def consenting_subjects(use: Use, subject_refs: Iterable[str]) -> dict[str, int]:
    """Of these holder references, those that may be included now, with their citizen."""
    refs = list(dict.fromkeys(subject_refs))
    links = consenting_links(use).filter(subject_ref__in=refs).values_list("subject_ref", "citizen_id")
    return dict(links)
