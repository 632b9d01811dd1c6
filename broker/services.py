"""Every state change of the trust core's parties: one transaction each."""

from __future__ import annotations

import datetime
import hashlib
import re
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction
from django.utils import timezone

from broker import audit, outbox, policy
from broker.errors import Conflict, Forbidden, InvalidInput, NotFound
from broker.models import Invitation, IssuedToken, Membership, OAuthClient, Organisation, User
from broker.oauth import services as oauth_services
from broker.oauth import tokens
from broker.policy import OrgAction
from sharing import services as sharing_services
from sharing.models import Grant

INVITATION_DAYS = 7
INVITATION_PREFIX = "tinv_"  # recognisable in logs and secret scanners; only its SHA-256 is stored
COUNTRY = re.compile(r"^[A-Z]{2}$")
LEI = re.compile(r"^[0-9A-Z]{18}[0-9]{2}$")
PENDING_APPLICATIONS_MAX = 3  # per applicant: enough for a group of bodies, too few to flood the queue


# --- applications and verification ---------------------------------------------------------------


def siren_is_valid(value: str) -> bool:
    """A SIREN is nine digits whose Luhn checksum is zero (INSEE)."""
    if not re.fullmatch(r"[0-9]{9}", value):
        return False
    total = 0
    for position, char in enumerate(reversed(value)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def lei_is_valid(value: str) -> bool:
    """An LEI is 20 characters whose ISO 7064 MOD 97-10 check holds (ISO 17442)."""
    return bool(LEI.match(value)) and int("".join(str(int(char, 36)) for char in value)) % 97 == 1


def normalised_identifier(scheme: str, value: str) -> str:
    """The identifier as Tiers stores it: no spaces, dots or hyphens; upper case."""
    return re.sub(r"[\s.\-]", "", value).upper()


def application_problems(
    *,
    slug: str,
    name: str,
    legal_identifier: str,
    identifier_scheme: str,
    country: str,
    kind: str,
    contact_email: str,
    recipient_category: str,
) -> list[dict[str, str]]:
    """What is wrong with an application, field by field (empty: it may be recorded)."""
    problems: list[dict[str, str]] = []

    def wrong(field: str, detail: str) -> None:
        problems.append({"field": field, "detail": detail})

    try:
        validate_slug(slug)
    except ValidationError:
        wrong("slug", "Use letters, digits, hyphens and underscores only.")
    if len(slug) > 64:
        wrong("slug", "64 characters at most.")
    if not name.strip() or len(name) > 200:
        wrong("name", "Give the organisation's legal name (200 characters at most).")
    if identifier_scheme not in Organisation.IdentifierScheme.values:
        wrong("identifier_scheme", f"One of: {', '.join(Organisation.IdentifierScheme.values)}.")
    elif identifier_scheme == Organisation.IdentifierScheme.SIREN and not siren_is_valid(legal_identifier):
        wrong("legal_identifier", "A SIREN is nine digits with a valid check digit.")
    elif identifier_scheme == Organisation.IdentifierScheme.LEI and not lei_is_valid(legal_identifier):
        wrong("legal_identifier", "An LEI is 20 letters and digits with valid check digits.")
    elif not re.fullmatch(r"[0-9A-Z]{2,64}", legal_identifier):
        wrong("legal_identifier", "Letters and digits only, 64 at most.")
    if not COUNTRY.match(country):
        wrong("country", "The ISO 3166-1 alpha-2 code, e.g. FR.")
    if kind not in Organisation.Kind.values:
        wrong("kind", f"One of: {', '.join(Organisation.Kind.values)}.")
    uses_data = kind in (Organisation.Kind.USER, Organisation.Kind.BOTH)
    if uses_data and recipient_category not in Organisation.RecipientCategory.values:
        wrong("recipient_category", f"A data user is one of: {', '.join(Organisation.RecipientCategory.values)}.")
    if not uses_data and recipient_category:
        wrong("recipient_category", "Only data users have a recipient category.")
    try:
        validate_email(contact_email)
    except ValidationError:
        wrong("contact_email", "Give an e-mail address where Tiers can reach the organisation.")
    return problems


def organisation_apply(
    *,
    actor: User,
    slug: str,
    name: str,
    legal_identifier: str,
    identifier_scheme: str,
    country: str,
    kind: str,
    contact_email: str,
    recipient_category: str = "",
) -> Organisation:
    """A logged-in person applies for their organisation: it waits for an operator, with them as its admin."""
    if not actor.is_authenticated or not actor.is_active:
        raise Forbidden("Log in first.")
    legal_identifier = normalised_identifier(identifier_scheme, legal_identifier)
    country = country.strip().upper()
    fields = {
        "slug": slug.strip(),
        "name": name.strip(),
        "legal_identifier": legal_identifier,
        "identifier_scheme": identifier_scheme,
        "country": country,
        "kind": kind,
        "contact_email": contact_email.strip(),
        "recipient_category": recipient_category,
    }
    problems = application_problems(**fields)
    if problems:
        raise InvalidInput(" ".join(p["detail"] for p in problems), errors=problems)
    try:
        with transaction.atomic():
            _refuse_duplicate(fields["slug"], identifier_scheme, legal_identifier)
            _refuse_flood(actor)
            organisation = Organisation.objects.create(**fields, verification_state=Organisation.Verification.PENDING)
            Membership.objects.create(user=actor, organisation=organisation, role=Membership.Role.ADMIN)
            audit.record(
                verb="organisation.applied",
                actor=actor,
                subject=organisation,
                details={
                    "name": organisation.name,
                    "legal_identifier": f"{identifier_scheme}:{legal_identifier}",
                    "kind": kind,
                    "recipient_category": recipient_category,
                    "admin": f"user:{actor.pk}",
                },
            )
    except IntegrityError as exc:  # a concurrent application won the race
        raise Conflict("An organisation with this slug or legal identifier exists already.") from exc
    return organisation


def _refuse_flood(applicant: User) -> None:
    waiting = Organisation.objects.filter(
        verification_state=Organisation.Verification.PENDING,
        memberships__user=applicant,
        memberships__role=Membership.Role.ADMIN,
    ).count()
    if waiting >= PENDING_APPLICATIONS_MAX:
        raise Conflict(f"You have {waiting} applications waiting for an operator; wait for their outcome first.")


def _refuse_duplicate(slug: str, scheme: str, legal_identifier: str) -> None:
    if Organisation.objects.filter(slug=slug).exists():
        raise Conflict(f"An organisation with slug {slug!r} exists already.", field="slug")
    if Organisation.objects.filter(identifier_scheme=scheme, legal_identifier=legal_identifier).exists():
        raise Conflict(
            "An organisation with this legal identifier exists already; ask its administrators to invite you.",
            field="legal_identifier",
        )


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
    """Record an organisation awaiting verification (operators and the demo; people apply instead)."""
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
        if organisation.verification_state == Organisation.Verification.EXCLUDED:
            # Re-admitting an excluded organisation is a decision of its own, not a verification.
            raise Conflict("This organisation is excluded; it is not verified again.")
        organisation.verification_state = Organisation.Verification.VERIFIED
        organisation.verified_at = timezone.now()
        organisation.state_reason = ""  # a rejection an operator reconsidered; the log keeps its reason
        organisation.save(update_fields=["verification_state", "verified_at", "state_reason"])
        audit.record(verb="organisation.verified", actor=actor, subject=organisation)
        outbox.emit("organisation.verified", {"organisation_id": organisation.pk})
        return organisation


def organisation_reject(*, actor: User, organisation: Organisation, reason: str) -> Organisation:
    """An operator turns down an application, saying why; its contact is told by e-mail."""
    policy.require(actor, OrgAction.VERIFY, organisation)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("Say why the application is rejected: the applicant is told.")
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if organisation.verification_state == Organisation.Verification.REJECTED:
            return organisation
        if organisation.verification_state != Organisation.Verification.PENDING:
            raise Conflict(
                f"Only a pending application is rejected; this organisation is {organisation.verification_state}."
            )
        organisation.verification_state = Organisation.Verification.REJECTED
        organisation.state_reason = reason
        organisation.save(update_fields=["verification_state", "state_reason"])
        audit.record(verb="organisation.rejected", actor=actor, subject=organisation, details={"reason": reason})
        outbox.emit("organisation.rejected", {"organisation_id": organisation.pk})
        return organisation


def organisation_exclude(*, actor: User, organisation: Organisation, reason: str) -> Organisation:
    """An operator excludes an abusive organisation (DGA Art. 12(g)): everything that lets it read stops at once.

    In one transaction: its state and the reason, its OAuth clients disabled, its
    live tokens revoked, its grants as a data user revoked and its pending access
    requests rejected, each with its audit entry; every process forgets what it
    remembered about tokens.
    """
    policy.require(actor, OrgAction.VERIFY, organisation)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("Say why the organisation is excluded.")
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if organisation.verification_state == Organisation.Verification.EXCLUDED:
            return organisation
        organisation.verification_state = Organisation.Verification.EXCLUDED
        organisation.state_reason = reason
        organisation.save(update_fields=["verification_state", "state_reason"])
        clients = [
            oauth_services.client_disable(actor=actor, client=client).client_id
            for client in OAuthClient.objects.filter(organisation=organisation, disabled_at__isnull=True)
        ]
        revoked_tokens = _tokens_revoke_all(actor=actor, organisation=organisation)
        grants = [
            str(sharing_services.grant_revoke(by=actor, grant=grant, reason=f"organisation excluded: {reason}").pk)
            for grant in Grant.objects.filter(organisation=organisation, state=Grant.State.ACTIVE)
        ]
        requests_closed = sharing_services.access_requests_close(
            by=actor, organisation=organisation, reason=f"organisation excluded: {reason}"
        )
        audit.record(
            verb="organisation.excluded",
            actor=actor,
            subject=organisation,
            details={
                "reason": reason,
                "clients_disabled": clients,
                "tokens_revoked": revoked_tokens,
                "grants_revoked": grants,
                "requests_rejected": requests_closed,
            },
        )
        tokens.invalidate_liveness()
        return organisation


def _tokens_revoke_all(*, actor: User, organisation: Organisation) -> int:
    """Revoke every unexpired token of the organisation's clients, in the caller's transaction."""
    now = timezone.now()
    live = IssuedToken.objects.filter(client__organisation=organisation, revoked_at__isnull=True, expires_at__gt=now)
    count = live.update(revoked_at=now)
    if count:
        audit.record(verb="token.revoked_all", actor=actor, subject=organisation, details={"tokens": count})
        tokens.invalidate_liveness()
    return count


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


# --- members and invitations ---------------------------------------------------------------------


def membership_set(*, actor: User, organisation: Organisation, user: User, role: str) -> Membership:
    """Give a user a role in an organisation, or change the role they have."""
    policy.require(actor, OrgAction.MANAGE_MEMBERS, organisation)
    with transaction.atomic():
        return _membership_put(actor=actor, organisation=organisation, user=user, role=role)


def _membership_put(*, actor: User, organisation: Organisation, user: User, role: str) -> Membership:
    """Create or change a membership with its audit entry, in the caller's transaction; the caller checked who may."""
    if role not in Membership.Role.values:
        raise InvalidInput(f"A role is one of: {', '.join(Membership.Role.values)}.")
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


def invitation_token_hash(token: str) -> str:
    """What Tiers keeps of an invitation's token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_send(*, actor: User, organisation: Organisation, email: str, role: str) -> tuple[Invitation, str]:
    """An organisation's admin invites someone by e-mail with a role; returns the invitation and its token.

    The token travels in the e-mail only: Tiers stores its hash, and the outbox
    handler drops it from the event once the message is sent.
    """
    policy.require(actor, OrgAction.MANAGE_MEMBERS, organisation)
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise InvalidInput(
            "Give the e-mail address of the person to invite.",
            errors=[{"field": "email", "detail": "not an e-mail address"}],
        ) from exc
    if role not in Membership.Role.values:
        raise InvalidInput(
            f"A role is one of: {', '.join(Membership.Role.values)}.",
            errors=[{"field": "role", "detail": "unknown role"}],
        )
    token = INVITATION_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        organisation = Organisation.objects.select_for_update().get(pk=organisation.pk)
        if not organisation.is_verified:
            raise Conflict("Members are invited once an operator has verified the organisation.")
        invitation = Invitation.objects.create(
            organisation=organisation,
            email=email,
            role=role,
            token_hash=invitation_token_hash(token),
            invited_by=actor,
            created_at=now,
            expires_at=now + datetime.timedelta(days=INVITATION_DAYS),
        )
        # The address stays out of the log, which outlives everything: the invitation row names it.
        audit.record(
            verb="invitation.sent",
            actor=actor,
            subject=organisation,
            details={"invitation": invitation.pk, "role": role},
        )
        outbox.emit("invitation.sent", {"invitation_id": invitation.pk, "token": token})
    return invitation, token


def invitation_find(token: str) -> Invitation:
    """The invitation a token opens, whatever its state; NotFound for a token Tiers never issued."""
    invitation = (
        Invitation.objects.select_related("organisation", "invited_by")
        .filter(token_hash=invitation_token_hash(token))
        .first()
    )
    if invitation is None:
        raise NotFound("This invitation does not exist.")
    return invitation


def invitation_accept(*, user: User, token: str) -> Membership:
    """The invited person, logged in, accepts: once, before it expires; they become a member with the role."""
    if not user.is_authenticated or not user.is_active:
        raise Forbidden("Log in first.")
    with transaction.atomic():
        found = invitation_find(token)
        invitation = Invitation.objects.select_for_update().get(pk=found.pk)
        organisation = found.organisation
        if invitation.accepted_at is not None:
            raise Conflict("This invitation was accepted already; it works once.")
        if invitation.expires_at <= timezone.now():
            raise Conflict("This invitation has expired; ask the organisation's administrators for a new one.")
        if not organisation.is_verified:
            raise Conflict("This organisation does not accept members now.")
        if Membership.objects.filter(user=user, organisation=organisation).exists():
            raise Conflict("You are a member of this organisation already.")
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        membership = _membership_put(actor=user, organisation=organisation, user=user, role=invitation.role)
        audit.record(
            verb="invitation.accepted",
            actor=user,
            subject=organisation,
            details={"invitation": invitation.pk, "user": f"user:{user.pk}", "role": invitation.role},
        )
        return membership
