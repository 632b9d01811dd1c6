"""The second factor: TOTP (RFC 6238) devices, their enrolment and the check of a code.

Operators and organisation admins must pass it after the password; citizens need not.
"""

from __future__ import annotations

import hmac
import logging
import time

import pyotp
import segno
from django.db import transaction
from django.utils import timezone

from broker import audit, keys
from broker.errors import Conflict
from broker.models import Membership, User
from broker.security.models import TOTPDevice

security_log = logging.getLogger("tiers.security")

ISSUER = "Tiers"
STEP_SECONDS = 30
# A code of the previous or next step is accepted too: clocks drift and people type slowly.
WINDOW_STEPS = 1


def requires_second_factor(user: object) -> bool:
    """Operators and organisation admins; not citizens, not other members, not OAuth clients."""
    if not isinstance(user, User) or not user.is_active:
        return False
    return user.is_staff or Membership.objects.filter(user=user, role=Membership.Role.ADMIN).exists()


def device_of(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user).first()


def aad_of(user: User) -> bytes:
    return f"tiers-totp:{user.pk}".encode()


def secret_of(device: TOTPDevice) -> str:
    """The device's base32 secret, unsealed (for the enrolment page and the demo's credentials only)."""
    return keys.unseal(bytes(device.sealed_secret), aad=aad_of(device.user)).decode()


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=user.get_username(), issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The URI as an SVG QR code in a data: URI, for an <img> (the CSP allows data: images, no inline code)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, dark="#000", light="#fff"))


def device_start(*, user: User) -> TOTPDevice:
    """A fresh, unconfirmed device with a new secret; replaces an earlier unconfirmed one."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.is_confirmed:
            raise Conflict("This account already has a confirmed authenticator.")
        sealed = keys.seal(pyotp.random_base32().encode(), aad=aad_of(user))
        if device is None:
            return TOTPDevice.objects.create(user=user, sealed_secret=sealed)
        device.sealed_secret = sealed
        device.created_at = timezone.now()
        device.save(update_fields=["sealed_secret", "created_at"])
        return device


def device_install(*, actor: User | None, user: User, secret: str) -> TOTPDevice:
    """A confirmed device with a known secret (the demo's admins); kept as is when it holds that secret."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.is_confirmed and secret_of(device) == secret:
            return device
        sealed = keys.seal(secret.encode(), aad=aad_of(user))
        device, _ = TOTPDevice.objects.update_or_create(
            user=user, defaults={"sealed_secret": sealed, "confirmed_at": timezone.now(), "last_used_step": 0}
        )
        audit.record(verb="security.totp_enrolled", actor=actor, subject=device, details={"user": user.pk})
        return device


def _matching_step(secret: str, code: str, after_step: int) -> int | None:
    """The time step whose code this is, within the window and later than `after_step`."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    now_step = int(time.time()) // STEP_SECONDS
    for step in range(now_step - WINDOW_STEPS, now_step + WINDOW_STEPS + 1):
        if step > after_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def device_confirm(*, user: User, code: str) -> bool:
    """The first code from the app proves it holds the secret: the device becomes the account's second factor."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=True).first()
        if device is None:
            return False
        step = _matching_step(secret_of(device), code, device.last_used_step)
        if step is None:
            return False
        device.confirmed_at = timezone.now()
        device.last_used_step = step
        device.save(update_fields=["confirmed_at", "last_used_step"])
        audit.record(verb="security.totp_enrolled", actor=user, subject=device, details={"user": user.pk})
    security_log.info("second factor enrolled for user %s", user.pk)
    return True


def code_verify(*, user: User, code: str) -> bool:
    """Check a code of the confirmed device; each code (each time step) is accepted once."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=False).first()
        if device is None:
            return False
        step = _matching_step(secret_of(device), code, device.last_used_step)
        if step is None:
            return False
        device.last_used_step = step
        device.save(update_fields=["last_used_step"])
    return True
