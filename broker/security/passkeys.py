"""Passkeys (WebAuthn): register a credential from the security page, then use it instead of a TOTP code.

Each ceremony has two steps. The server makes the options with a fresh challenge and keeps the
challenge in the session (one at a time, for one purpose and one person, for a few minutes); the
browser hands the options to the authenticator; the server takes the challenge back, whatever the
outcome, and verifies the answer against it with py_webauthn. A challenge is therefore used once.

The relying party is the host the person reached (or WEBAUTHN_RP_ID) and the origin is that of
the request: a credential made for one site does not sign in to another. Attestation is not asked
for ("none"): any authenticator the person trusts will do, and what is kept is only a public key.
Neither public keys nor challenges are ever logged or audited.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.http.request import split_domain_port
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import parse_authentication_credential_json
from webauthn.helpers.parse_registration_credential_json import parse_registration_credential_json
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from broker import audit
from broker.errors import Conflict, InvalidInput, NotFound
from broker.models import User
from broker.security import totp
from broker.security.models import Passkey

security_log = logging.getLogger("tiers.security")

RP_NAME = "Tiers"
CHALLENGE_SESSION_KEY = "tiers_webauthn_challenge"
# Long enough to find a security key and type its PIN; a challenge older than this is refused.
CHALLENGE_SECONDS = 180
NAME_MAX_LENGTH = 64
REGISTER = "register"
AUTHENTICATE = "authenticate"
# What a hostile answer can raise while it is parsed: each one is a refusal, never a server error.
_MALFORMED = (WebAuthnException, ValueError, TypeError, KeyError, IndexError, OverflowError)


class PasskeyRefused(InvalidInput):
    """The browser's answer does not prove what it should: nothing was registered or accepted."""

    slug = "passkey-refused"
    title = "The passkey was not accepted."


def _json_object(value: object) -> dict[str, Any]:
    """The browser's answer as py_webauthn parses it: a JSON object, nothing else."""
    if not isinstance(value, dict):
        raise TypeError("the credential is not a JSON object")
    return value


def _reason(exc: Exception) -> str:
    """Why py_webauthn refused, for the security log: its messages name the check, never a key or a challenge."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"


@dataclass(frozen=True)
class RelyingParty:
    """Who the credential is for (`rp_id`, a host name) and where the ceremony must have run (`origin`)."""

    rp_id: str
    origin: str


def relying_party(request: HttpRequest) -> RelyingParty:
    """The site the person reached: its host name (or WEBAUTHN_RP_ID) and its origin."""
    host = request.get_host()  # checked against ALLOWED_HOSTS
    hostname, _port = split_domain_port(host)
    return RelyingParty(rp_id=settings.WEBAUTHN_RP_ID or hostname, origin=f"{request.scheme}://{host}")


def user_handle(user: User) -> bytes:
    """The opaque id authenticators keep for the account: derived from its id, telling nothing about the person."""
    return salted_hmac("tiers.webauthn.user-handle", str(user.pk), algorithm="sha256").digest()


def has_passkeys(user: User) -> bool:
    return Passkey.objects.filter(user=user).exists()


def _descriptors(user: User) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=bytes(passkey.credential_id), transports=[AuthenticatorTransport(t) for t in passkey.transports]
        )
        for passkey in Passkey.objects.filter(user=user)
    ]


# --- challenges -----------------------------------------------------------------------------------


def _challenge_keep(session: SessionBase, *, purpose: str, user: User, challenge: bytes) -> None:
    session[CHALLENGE_SESSION_KEY] = {
        "purpose": purpose,
        "user": user.pk,
        "challenge": bytes_to_base64url(challenge),
        "expires": time.time() + CHALLENGE_SECONDS,
    }


def _challenge_take(session: SessionBase, *, purpose: str, user: User) -> bytes:
    """The challenge last issued for this purpose and person, forgotten as it is read; refused when stale."""
    kept = session.pop(CHALLENGE_SESSION_KEY, None)
    fresh = (
        isinstance(kept, dict)
        and kept.get("purpose") == purpose
        and kept.get("user") == user.pk
        and float(kept.get("expires", 0)) > time.time()
    )
    if not fresh:
        raise PasskeyRefused(_("This passkey request has expired or was already used. Please try again."))
    return base64url_to_bytes(str(kept["challenge"]))


# --- registration ---------------------------------------------------------------------------------


def registration_options(*, user: User, rp: RelyingParty, session: SessionBase) -> dict[str, Any]:
    """The options for navigator.credentials.create(), as JSON; the challenge waits in the session."""
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=RP_NAME,
        user_name=user.get_username(),
        user_id=user_handle(user),
        user_display_name=user.get_full_name() or user.get_username(),
        timeout=CHALLENGE_SECONDS * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(user),
    )
    _challenge_keep(session, purpose=REGISTER, user=user, challenge=options.challenge)
    return options_to_json_dict(options)


def _clean_name(name: object) -> str:
    cleaned = " ".join(str(name or "").split())
    if not cleaned:
        raise InvalidInput(_("Give this passkey a name, such as the device it is on."))
    if len(cleaned) > NAME_MAX_LENGTH:
        raise InvalidInput(_("A passkey's name has at most 64 characters."))
    return cleaned


def passkey_register(
    *, user: User, name: object, credential: object, rp: RelyingParty, session: SessionBase
) -> Passkey:
    """Check the authenticator's answer to the registration options and keep the new credential."""
    cleaned = _clean_name(name)
    challenge = _challenge_take(session, purpose=REGISTER, user=user)
    try:
        parsed: RegistrationCredential = parse_registration_credential_json(_json_object(credential))
        verified = verify_registration_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp.rp_id, expected_origin=rp.origin
        )
    except _MALFORMED as exc:
        security_log.info("passkey registration refused for user %s: %s", user.pk, _reason(exc))
        raise PasskeyRefused(_("Your browser's answer could not be verified: no passkey was added.")) from None
    already = Conflict(_("This passkey is already registered."))
    if Passkey.objects.filter(credential_id=verified.credential_id).exists():
        raise already
    try:
        with transaction.atomic():
            passkey = Passkey.objects.create(
                user=user,
                name=cleaned,
                credential_id=verified.credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                transports=[transport.value for transport in parsed.response.transports or []],
            )
            audit.record(verb="security.passkey_registered", actor=user, subject=passkey, details={"user": user.pk})
    except IntegrityError:  # the same credential registered at the same moment by another request
        raise already from None
    security_log.info("passkey %s registered for user %s", passkey.pk, user.pk)
    return passkey


# --- authentication -------------------------------------------------------------------------------


def authentication_options(*, user: User, rp: RelyingParty, session: SessionBase) -> dict[str, Any]:
    """The options for navigator.credentials.get(), naming the person's credentials; the challenge waits."""
    descriptors = _descriptors(user)
    if not descriptors:
        raise NotFound(_("This account has no passkey."))
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        timeout=CHALLENGE_SECONDS * 1000,
        allow_credentials=descriptors,
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    _challenge_keep(session, purpose=AUTHENTICATE, user=user, challenge=options.challenge)
    return options_to_json_dict(options)


def _refused(user: User, reason: str) -> PasskeyRefused:
    security_log.info("passkey refused for user %s: %s", user.pk, reason)
    return PasskeyRefused(_("This passkey was not accepted. Try again, or give a code instead."))


def passkey_authenticate(*, user: User, credential: object, rp: RelyingParty, session: SessionBase) -> Passkey:
    """Check the authenticator's signature over the challenge with one of the person's own credentials."""
    challenge = _challenge_take(session, purpose=AUTHENTICATE, user=user)
    try:
        parsed: AuthenticationCredential = parse_authentication_credential_json(_json_object(credential))
    except _MALFORMED as exc:
        raise _refused(user, _reason(exc)) from None
    # Another person's credential is as unknown here as one that does not exist.
    passkey = Passkey.objects.filter(user=user, credential_id=parsed.raw_id).first()
    if passkey is None:
        raise _refused(user, "unknown credential")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
        )
    except _MALFORMED as exc:
        raise _refused(user, f"passkey {passkey.pk}: {_reason(exc)}") from None
    return _passkey_used(user=user, passkey_id=passkey.pk, sign_count=verified.new_sign_count)


def _passkey_used(*, user: User, passkey_id: int, sign_count: int) -> Passkey:
    """Record a verified use; the count is checked again under the row lock, against a use at the same time."""
    with transaction.atomic():
        passkey = Passkey.objects.select_for_update().filter(pk=passkey_id).first()
        if passkey is None:  # removed in the meantime
            raise _refused(user, "unknown credential")
        if (sign_count or passkey.sign_count) and sign_count <= passkey.sign_count:
            raise _refused(user, f"sign count did not grow on passkey {passkey.pk}")
        passkey.sign_count = sign_count
        passkey.last_used_at = timezone.now()
        passkey.save(update_fields=["sign_count", "last_used_at"])
        audit.record(verb="security.passkey_used", actor=user, subject=passkey, details={"user": user.pk})
    return passkey


# --- removal --------------------------------------------------------------------------------------


def passkey_remove(*, actor: User, user: User, passkey_id: object) -> None:
    """Remove one of the person's passkeys, unless it is the last second factor of someone who needs one."""
    with transaction.atomic():
        passkeys = list(Passkey.objects.select_for_update().filter(user=user))
        passkey = next((p for p in passkeys if str(p.pk) == str(passkey_id)), None)
        if passkey is None:
            raise NotFound(_("There is no such passkey on your account."))
        device = totp.device_of(user)
        last_factor = len(passkeys) == 1 and not (device and device.is_confirmed)
        if last_factor and totp.requires_second_factor(user):
            raise Conflict(_("This is your only second factor: add another passkey or an authenticator app first."))
        removed, subject = passkey.pk, audit.subject_ref(passkey)
        passkey.delete()
        audit.record(verb="security.passkey_removed", actor=actor, subject=subject, details={"user": user.pk})
    security_log.info("passkey %s removed from user %s", removed, user.pk)
