"""Every state change of the trust core's parties: one transaction each."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from broker import audit, outbox, policy
from broker.errors import Conflict
from broker.models import Membership, Organisation, User
from broker.oauth import tokens
from broker.policy import OrgAction


def organisation_register(
    *,
    actor: User,
    slug: str,
    name: str,
    legal_identifier: str,
    identifier_scheme: str,
    country: str,
    kind: str,
    contact_email: str = "",
    recipient_category: str = "",
) -> Organisation:
    """Record an organisation awaiting verification."""
    with transaction.atomic():
        if Organisation.objects.filter(slug=slug).exists():
            raise Conflict(f"An organisation with slug {slug!r} exists already.")
        organisation = Organisation.objects.create(
            slug=slug,
            name=name,
            legal_identifier=legal_identifier,
            identifier_scheme=identifier_scheme,
            country=country.upper(),
            kind=kind,
            contact_email=contact_email,
            recipient_category=recipient_category,
        )
        audit.record(
            verb="organisation.registered",
            actor=actor,
            subject=organisation,
            details={
                "name": name,
                "legal_identifier": f"{identifier_scheme}:{legal_identifier}",
                "kind": kind,
                "recipient_category": recipient_category,
            },
        )
        return organisation


def organisation_verify(*, actor: User, organisation: Organisation) -> Organisation:
    """An operator confirms the organisation's identity; it joins the public register."""
    policy.require(actor, OrgAction.VERIFY, organisation)
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if organisation.is_verified:
            return organisation
        organisation.verification_state = Organisation.Verification.VERIFIED
        organisation.verified_at = timezone.now()
        organisation.save(update_fields=["verification_state", "verified_at"])
        audit.record(verb="organisation.verified", actor=actor, subject=organisation)
        outbox.emit("organisation.verified", {"organisation_id": organisation.pk})
        return organisation


def organisation_exclude(*, actor: User, organisation: Organisation, reason: str) -> Organisation:
    """An operator excludes an organisation (DGA Art. 12(g)): its tokens stop working at once."""
    policy.require(actor, OrgAction.VERIFY, organisation)
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if organisation.verification_state == Organisation.Verification.EXCLUDED:
            return organisation
        organisation.verification_state = Organisation.Verification.EXCLUDED
        organisation.save(update_fields=["verification_state"])
        audit.record(verb="organisation.excluded", actor=actor, subject=organisation, details={"reason": reason})
        tokens.invalidate_liveness()
        return organisation


def organisation_update_profile(
    *, actor: User, organisation: Organisation, name: str | None = None, contact_email: str | None = None
) -> Organisation:
    """An organisation's admin corrects its display name or contact address."""
    policy.require(actor, OrgAction.EDIT_PROFILE, organisation)
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        changed = []
        if name is not None and name != organisation.name:
            organisation.name = name
            changed.append("name")
        if contact_email is not None and contact_email != organisation.contact_email:
            organisation.contact_email = contact_email
            changed.append("contact_email")
        if changed:
            organisation.save(update_fields=changed)
            audit.record(verb="organisation.updated", actor=actor, subject=organisation, details={"fields": changed})
        return organisation


def membership_set(*, actor: User, organisation: Organisation, user: User, role: str) -> Membership:
    """Give a user a role in an organisation, or change the role they have."""
    policy.require(actor, OrgAction.MANAGE_MEMBERS, organisation)
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            user=user, organisation=organisation, defaults={"role": role}
        )
        if not created and membership.role == role:
            return membership
        if not created:
            membership.role = role
            membership.save(update_fields=["role"])
        audit.record(
            verb="membership.role_set",
            actor=actor,
            subject=organisation,
            details={"user": f"user:{user.pk}", "role": role},
        )
        return membership
