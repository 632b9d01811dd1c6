"""Reads of the trust core shared by several callers, scoped to the caller."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from broker.errors import Forbidden, InvalidInput
from broker.models import Membership, Organisation, User


def organisation_public_list() -> QuerySet[Organisation]:
    """The public register: verified organisations only."""
    return Organisation.objects.verified()


def organisations_of(user: User | AnonymousUser) -> QuerySet[Organisation]:
    """The organisations the user is a member of."""
    if not user.is_authenticated:
        return Organisation.objects.none()
    return Organisation.objects.filter(memberships__user=user).order_by("name")


def organisation_for_caller(user: User | AnonymousUser, slug: str | None) -> Organisation:
    """The organisation a member acts for: their only one, or the one they name."""
    organisations = list(organisations_of(user))
    if not organisations:
        raise Forbidden("You are not a member of any organisation.")
    if slug is None:
        if len(organisations) > 1:
            raise InvalidInput(
                "You are a member of several organisations: name one with ?organisation=<slug>.",
                choices=[organisation.slug for organisation in organisations],
            )
        return organisations[0]
    for organisation in organisations:
        if organisation.slug == slug:
            return organisation
    raise Forbidden("You are not a member of that organisation.")


def members_of(organisation: Organisation) -> QuerySet[Membership]:
    """An organisation's memberships with their users, for those allowed to see them."""
    return organisation.memberships.select_related("user").order_by("user__username")
