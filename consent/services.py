"""State changes of citizens' accounts, links and consents: one transaction and one audit entry each."""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import rfc8785
from django.db import IntegrityError, transaction
from django.utils import timezone

from broker import audit, outbox, ratelimit
from broker.errors import Conflict, Forbidden, InvalidInput, NotFound
from broker.models import Organisation, User
from broker.observability import metrics
from broker.webhooks import fanout
from broker.webhooks.services import deliveries_write
from consent import receipts
from consent.models import (
    CitizenProfile,
    ConsentEvent,
    ConsentModule,
    ConsentRecord,
    IdentityLink,
    LinkCode,
    OidcIdentity,
)
from consent.rights import RightsRecipient, RightsRequest
from sharing.models import DeliverySubject

LINK_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and typed by people
LINK_CODE_GROUPS = 5  # 5 groups of 4 from 30 symbols: 98 bits
LINK_CODE_TTL = datetime.timedelta(days=14)
REDEEM_ATTEMPTS_PER_HOUR = 10


def citizen_register(
    *,
    username: str,
    email: str,
    password: str | None,
    display_name: str = "",
    language: str = "en",
    active: bool = True,
) -> User:
    """Create a citizen's account with its profile; a self-service sign-up starts inactive until verified.

    With no password, the account is only reached through an OpenID Connect provider.
    """
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise Conflict("This username is taken.")
        user = User.objects.create_user(username=username, email=email, password=password, is_active=active)
        CitizenProfile.objects.create(
            user=user, display_name=display_name, preferred_language=language, awaiting_email_verification=not active
        )
        audit.record(verb="citizen.registered", actor=user, subject=f"user:{user.pk}", citizen=user)
        return user


def _username(provider: str, subject: str) -> str:
    """A stable username that neither leaks the provider's subject nor collides across providers."""
    digest = hashlib.sha256(f"{provider}\0{subject}".encode()).hexdigest()[:24]
    return f"{provider}-{digest}"


def _display_name(claims: Mapping[str, Any]) -> str:
    name = claims.get("name") or " ".join(str(claims[key]) for key in ("given_name", "family_name") if claims.get(key))
    return str(name)[:150]


def oidc_identity_resolve(*, provider: str, claims: Mapping[str, Any], language: str = "en") -> User:
    """The citizen behind a verified ID token; the first login opens their account and links the identity."""
    subject = str(claims["sub"])
    existing = OidcIdentity.objects.select_related("user").filter(provider=provider, subject=subject).first()
    if existing is not None:
        return existing.user
    # An address the provider has not verified could be anyone's: it is not kept.
    email = str(claims.get("email") or "") if claims.get("email_verified") is True else ""
    try:
        with transaction.atomic():
            user = citizen_register(
                username=_username(provider, subject),
                email=email,
                password=None,  # no password: this citizen logs in at the provider
                display_name=_display_name(claims),
                language=language,
            )
            identity = OidcIdentity.objects.create(provider=provider, subject=subject, user=user)
            audit.record(
                verb="citizen.oidc_linked", actor=user, subject=identity, details={"provider": provider}, citizen=user
            )
            return user
    except (IntegrityError, Conflict):
        # The same person logging in twice at once: the other request opened the account.
        existing = OidcIdentity.objects.select_related("user").filter(provider=provider, subject=subject).first()
        if existing is None:
            raise
        return existing.user


def citizen_verify_email(*, citizen: User) -> User:
    """The citizen proved the address is theirs: the account opens."""
    with transaction.atomic():
        citizen = User.objects.select_for_update().get(pk=citizen.pk)
        profile = CitizenProfile.objects.select_for_update().filter(user=citizen).first()
        if profile is None or not profile.awaiting_email_verification:
            return citizen  # verified already, or disabled by staff: the link changes nothing
        profile.awaiting_email_verification = False
        profile.save(update_fields=["awaiting_email_verification"])
        citizen.is_active = True
        citizen.save(update_fields=["is_active"])
        audit.record(verb="citizen.email_verified", actor=citizen, subject=f"user:{citizen.pk}", citizen=citizen)
        return citizen


# --- identity links ------------------------------------------------------------------------------


def _code_hash(code: str) -> str:
    normalised = code.upper().replace("-", "").replace(" ", "")
    return "sha256$" + hashlib.sha256(normalised.encode()).hexdigest()


def link_code_issue(*, actor: Any, holder: Organisation, subject_ref: str) -> tuple[LinkCode, str]:
    """A one-time code for one of the holder's customers; returns the record and the code (shown once)."""
    if not holder.holds_data or not holder.is_verified:
        raise Forbidden("Only a verified data holder issues link codes.")
    raw = "".join(secrets.choice(LINK_CODE_ALPHABET) for _ in range(4 * LINK_CODE_GROUPS))
    code = "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))
    with transaction.atomic():
        link_code = LinkCode.objects.create(
            holder=holder,
            subject_ref=subject_ref,
            code_hash=_code_hash(code),
            expires_at=timezone.now() + LINK_CODE_TTL,
        )
        audit.record(
            verb="link_code.issued", actor=actor, subject=holder, details={"expires_at": str(link_code.expires_at)}
        )
    return link_code, code


def link_redeem(*, citizen: User, code: str) -> IdentityLink:
    """The citizen links their account to the holder's reference the code was issued for."""
    if not ratelimit.allow(f"link-redeem:{citizen.pk}", limit=REDEEM_ATTEMPTS_PER_HOUR, window_seconds=3600):
        raise Forbidden("Too many attempts: try again in an hour.")
    with transaction.atomic():
        link_code = LinkCode.objects.select_for_update().filter(code_hash=_code_hash(code)).first()
        if link_code is None or link_code.used_at is not None or link_code.expires_at <= timezone.now():
            raise InvalidInput("This code is not valid: it may be mistyped, used already or expired.")
        link_code.used_at = timezone.now()
        link_code.save(update_fields=["used_at"])
        try:
            with transaction.atomic():
                link = IdentityLink.objects.create(
                    citizen=citizen, holder=link_code.holder, subject_ref=link_code.subject_ref
                )
        except IntegrityError as exc:
            raise Conflict("Your account, or this customer reference, is already linked with this holder.") from exc
        audit.record(verb="identity.linked", actor=citizen, subject=link_code.holder, citizen=citizen)
    return link


def link_remove(*, citizen: User, link: IdentityLink) -> IdentityLink:
    """Unlink; the consents given to that holder are withdrawn with it, in the same transaction."""
    with transaction.atomic():
        link = IdentityLink.objects.select_for_update().get(pk=link.pk, citizen=citizen)
        if link.unlinked_at is not None:
            return link
        link.unlinked_at = timezone.now()
        link.save(update_fields=["unlinked_at"])
        audit.record(verb="identity.unlinked", actor=citizen, subject=link.holder, citizen=citizen)
        for record in ConsentRecord.objects.select_for_update().filter(citizen=citizen, holder=link.holder):
            if record.state not in (ConsentRecord.State.WITHDRAWN, ConsentRecord.State.EXPIRED):
                _change(record, citizen, event="withdrawn", state=ConsentRecord.State.WITHDRAWN)
    return link


# --- consent modules -------------------------------------------------------------------------------


def module_publish(*, actor: Any, holder: Organisation, slug: str, content: dict[str, Any]) -> ConsentModule:
    """Publish a module, or a new version of it; earlier versions stay valid for what they covered."""
    if not holder.holds_data:
        raise Forbidden("Only a data holder publishes consent modules.")
    if not content.get("purposes"):
        raise InvalidInput("A module names at least one purpose.")
    notice_hash = hashlib.sha256(rfc8785.dumps(content)).hexdigest()
    with transaction.atomic():
        latest = ConsentModule.objects.select_for_update().filter(holder=holder, slug=slug).order_by("-version").first()
        if latest is not None and latest.notice_hash == notice_hash:
            return latest
        module = ConsentModule.objects.create(
            holder=holder, slug=slug, version=(latest.version + 1) if latest else 1, notice_hash=notice_hash, **content
        )
        if latest is not None:
            latest.retired_at = module.published_at
            latest.save(update_fields=["retired_at"])
        audit.record(
            verb="consent_module.published",
            actor=actor,
            subject=holder,
            details={"module": slug, "version": module.version, "sha256": notice_hash},
        )
    return module


# --- consents ----------------------------------------------------------------------------------


def _change(record: ConsentRecord, citizen: User, *, event: str, state: str) -> ConsentRecord:
    """Append an event to the record, with its audit entry and its signed receipt."""
    now = timezone.now()
    record.state = state
    record.updated_at = now
    record.save(update_fields=["state", "updated_at", "given_at", "expires_at"])
    entry = audit.record(
        verb=f"consent.{event}",
        actor=citizen,
        subject=record,
        details={"holder": record.holder.slug, "purpose": record.purpose, "module": record.module.slug},
        citizen=citizen,
    )
    change = ConsentEvent(record=record, event=event, state=state, at=now, actor=audit.actor_ref(citizen))
    change.audit_entry_id = entry.pk
    change.receipt = receipts.sign(record, change)
    change.save()
    transaction.on_commit(lambda: metrics.CONSENT_CHANGES.labels(event=event).inc())
    _tell(record, event)
    return record


# Changes the holder and the data users are told of at once (DGA Art. 21): the outbox event and the
# webhook deliveries commit with the change. Expiry emits its own event (consent/expiry.py).
_TOLD = {"withdrawn": "consent.withdrawn", "paused": "consent.paused"}


def _tell(record: ConsentRecord, event: str) -> None:
    topic = _TOLD.get(event)
    if topic is None:
        return
    emitted = outbox.emit(topic, {"consent": str(record.pk)})
    fanout.consent_changed(record, fanout.CONSENT_EVENTS[event], source=emitted.pk, occurred_at=emitted.created_at)


def consent_give(*, citizen: User, module: ConsentModule, purposes: Sequence[str]) -> list[ConsentRecord]:
    """Consent to some purposes of the module's current version, one record per purpose."""
    unknown = set(purposes) - set(module.purposes)
    if unknown or not purposes:
        raise InvalidInput(f"Choose among this module's purposes: {', '.join(module.purposes)}.")
    records = []
    with transaction.atomic():
        # Locked, so that a new version published or an unlink meanwhile waits for this, or wins first.
        module = ConsentModule.objects.select_for_update().get(pk=module.pk)
        if module.retired_at is not None:
            raise Conflict("This module has a newer version: read it and consent to that one.")
        link = IdentityLink.objects.select_for_update().filter(
            citizen=citizen, holder=module.holder, unlinked_at__isnull=True
        )
        if not link:
            raise Forbidden("Link your account with this holder first.")
        for purpose in dict.fromkeys(purposes):
            now = timezone.now()
            record, created = ConsentRecord.objects.select_for_update().get_or_create(
                citizen=citizen,
                module=module,
                purpose=purpose,
                defaults={
                    "holder": module.holder,
                    "state": ConsentRecord.State.GIVEN,
                    "given_at": now,
                    "expires_at": now + datetime.timedelta(days=module.duration_days),
                    "updated_at": now,
                },
            )
            if created or not record.is_active():
                record.given_at, record.expires_at = now, now + datetime.timedelta(days=module.duration_days)
                record = _change(record, citizen, event="given", state=ConsentRecord.State.GIVEN)
            records.append(record)
    return records


def _owned(citizen: User, record: ConsentRecord) -> ConsentRecord:
    locked = (
        ConsentRecord.objects.select_for_update()
        .select_related("module", "holder")
        .filter(pk=record.pk, citizen=citizen)
        .first()
    )
    if locked is None:
        raise NotFound("No such consent.")
    return locked


def consent_withdraw(*, citizen: User, record: ConsentRecord) -> ConsentRecord:
    """Withdraw: as easy as giving (GDPR Art. 7(3)), effective for the next read."""
    with transaction.atomic():
        record = _owned(citizen, record)
        if record.state in (ConsentRecord.State.WITHDRAWN, ConsentRecord.State.EXPIRED):
            return record
        return _change(record, citizen, event="withdrawn", state=ConsentRecord.State.WITHDRAWN)


def consent_withdraw_all(*, citizen: User, holder: Organisation) -> int:
    """Withdraw every consent given to one holder, all or none; returns how many were withdrawn."""
    standing = (*ConsentRecord.ACTIVE_STATES, ConsentRecord.State.PAUSED)
    with transaction.atomic():
        records = ConsentRecord.objects.select_for_update().filter(citizen=citizen, holder=holder, state__in=standing)
        for record in records:
            _change(record, citizen, event="withdrawn", state=ConsentRecord.State.WITHDRAWN)
        return len(records)


def consent_pause(*, citizen: User, record: ConsentRecord) -> ConsentRecord:
    """Pause: no use of the data until resumed."""
    with transaction.atomic():
        record = _owned(citizen, record)
        if record.state == ConsentRecord.State.PAUSED:
            return record
        if not record.is_active():
            raise Conflict(f"A consent that is {record.state} cannot be paused.")
        return _change(record, citizen, event="paused", state=ConsentRecord.State.PAUSED)


def consent_resume(*, citizen: User, record: ConsentRecord) -> ConsentRecord:
    """Resume a paused consent, if its module version is still current and it has not expired."""
    with transaction.atomic():
        record = _owned(citizen, record)
        if record.is_active():
            return record
        if record.state != ConsentRecord.State.PAUSED:
            raise Conflict(f"A consent that is {record.state} cannot be resumed; give it again.")
        if record.expires_at <= timezone.now():
            raise Conflict("This consent has expired; renew it.")
        return _change(record, citizen, event="resumed", state=ConsentRecord.State.GIVEN)


def consent_renew(*, citizen: User, record: ConsentRecord) -> ConsentRecord:
    """Renew for another full duration, on the same module version only (never stretched to a new text)."""
    with transaction.atomic():
        record = _owned(citizen, record)
        if record.state == ConsentRecord.State.WITHDRAWN:
            raise Conflict("A withdrawn consent cannot be renewed; give it again.")
        if record.state == ConsentRecord.State.PAUSED:
            raise Conflict("A paused consent is resumed, not renewed.")
        if not IdentityLink.objects.filter(citizen=citizen, holder=record.holder, unlinked_at__isnull=True).exists():
            raise Forbidden("Link your account with this holder first.")
        if record.module.retired_at is not None:
            raise Conflict("This module has a newer version: read it and consent to that one.")
        now = timezone.now()
        record.given_at, record.expires_at = now, now + datetime.timedelta(days=record.module.duration_days)
        return _change(record, citizen, event="renewed", state=ConsentRecord.State.RENEWED)


# --- rights ------------------------------------------------------------------------------------------


def citizen_erase(*, citizen: User) -> int:
    """Erase the account (GDPR Art. 17): consents withdrawn, links and profile removed, log bodies erased.

    Returns how many audit bodies were erased. The log's leaves stay, so it still verifies.
    A person who also works for an organisation or for Tiers leaves those roles first: their
    account carries that work (invitations sent, registrations recorded), and deleting it here
    would drop an organisation's administrator without a trace.
    """
    with transaction.atomic():
        citizen = User.objects.select_for_update().get(pk=citizen.pk)
        if citizen.is_staff or citizen.is_superuser or citizen.memberships.exists():
            raise Conflict(
                "This account also works for an organisation or for Tiers: leave those roles first "
                "(an organisation's administrator removes the membership), then delete the account."
            )
        # The notices go first: who to tell is read from the links and deliveries erased below.
        _rights_file(citizen, kind=RightsRequest.Kind.ERASURE, details="")
        for link in IdentityLink.objects.filter(citizen=citizen, unlinked_at__isnull=True):
            link_remove(citizen=citizen, link=link)
        erased = audit.erase_citizen(actor="system", citizen_id=citizen.pk)
        # Links, consent records, their events and the profile go with the account.
        citizen.delete()
    return erased


RIGHTS_REQUESTS_PER_DAY = 10


def rights_request_file(*, citizen: User, kind: str, details: str = "") -> RightsRequest:
    """Forward a citizen's erasure, rectification or objection to every organisation holding their data.

    The holders they are linked with get it with their own reference for the citizen; the data
    users whose deliveries included them, with the pseudonyms they know them by.
    """
    if kind not in RightsRequest.Kind.values:
        raise InvalidInput(f"A request is one of: {', '.join(RightsRequest.Kind.values)}.")
    if len(details) > 5000:
        raise InvalidInput("Say it in 5,000 characters at most.")
    if not ratelimit.allow(f"rights-request:{citizen.pk}", limit=RIGHTS_REQUESTS_PER_DAY, window_seconds=86400):
        raise Forbidden("Too many requests today: try again tomorrow.")
    with transaction.atomic():
        return _rights_file(citizen, kind=kind, details=details)


def _rights_recipients(citizen: User) -> dict[int, dict[str, Any]]:
    """Per organisation, what it knows the citizen by: the holders' references, the users' pseudonyms."""
    recipients: dict[int, dict[str, Any]] = {}
    for holder_id, subject_ref in IdentityLink.objects.filter(citizen=citizen, unlinked_at__isnull=True).values_list(
        "holder_id", "subject_ref"
    ):
        recipients.setdefault(holder_id, {})["subject_ref"] = subject_ref
    included = (
        DeliverySubject.objects.filter(citizen=citizen)
        .values_list("delivery__grant__organisation_id", "delivery__grant__dataset__holder__slug", "pseudonym")
        .distinct()
        .order_by("delivery__grant__organisation_id", "delivery__grant__dataset__holder__slug")
    )
    for organisation_id, holder_slug, pseudonym in included:
        subjects = recipients.setdefault(organisation_id, {}).setdefault("subjects", [])
        subjects.append({"holder": holder_slug, "subject_pseudonym": pseudonym})
    return recipients


def _rights_file(citizen: User, *, kind: str, details: str) -> RightsRequest:
    """Record the request and write one delivery per recipient's endpoint (in the caller's transaction)."""
    request = RightsRequest.objects.create(citizen=citizen, kind=kind, details=details)
    recipients = _rights_recipients(citizen)
    for organisation_id, known_as in recipients.items():
        payload = {"request": str(request.pk), "kind": kind, "details": details, **known_as}
        written = deliveries_write(
            organisation_id=organisation_id,
            event_type=request.event_type,
            payload=payload,
            occurred_at=request.created_at,
            source_event=None,
        )
        RightsRecipient.objects.create(
            request=request,
            organisation_id=organisation_id,
            delivery=written[0] if written else None,
            state=RightsRecipient.State.PENDING if written else RightsRecipient.State.NO_ENDPOINT,
        )
    audit.record(
        verb="rights.requested",
        actor=citizen,
        subject=request,
        details={"kind": kind, "recipients": len(recipients)},
        citizen=citizen,
    )
    return request
