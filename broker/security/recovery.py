"""Recovery codes: ten single-use codes that stand in for the second factor when its device is lost.

A set is made when a person enrols their authenticator app, and again on demand from the security
page (the new set replaces the old one). The codes are shown once; only their SHA-256 digests are
kept. A code is given at /accounts/2fa/ in place of a TOTP code, under the same attempt limit.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.db import transaction
from django.utils import timezone

from broker import audit
from broker.models import User
from broker.security.models import RecoveryCode

security_log = logging.getLogger("tiers.security")

CODE_COUNT = 10
# No 0/o, 1/i/l: codes are copied from paper. 31 symbols, 16 of them: about 79 random bits a code,
# beyond the reach of guessing online (five tries a quarter of an hour) or of reversing a digest.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
CODE_LENGTH = 16
GROUP = 4


def _normalise(code: str) -> str:
    """What the person typed, without spaces or dashes, in lower case."""
    return "".join(code.split()).replace("-", "").lower()


def _digest(code: str) -> str:
    return hashlib.sha256(f"tiers-recovery:{_normalise(code)}".encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    """A recovery code rather than a six-digit TOTP code, by its shape alone."""
    normalised = _normalise(code)
    return len(normalised) == CODE_LENGTH and all(char in ALPHABET for char in normalised)


def _new_code() -> str:
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(code[i : i + GROUP] for i in range(0, CODE_LENGTH, GROUP))


def remaining(user: User) -> int:
    """How many of the person's recovery codes are still unused."""
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def recovery_codes_generate(*, actor: User, user: User) -> list[str]:
    """A new set of codes for the person, replacing every earlier one; the codes themselves, to show once."""
    codes = [_new_code() for _ in range(CODE_COUNT)]
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()  # one new set at a time per person
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create([RecoveryCode(user=user, digest=_digest(code)) for code in codes])
        audit.record(
            verb="security.recovery_codes_generated",
            actor=actor,
            subject=user,
            details={"user": user.pk, "count": CODE_COUNT},
        )
    security_log.info("recovery codes generated for user %s", user.pk)
    return codes


def recovery_code_use(*, user: User, code: str) -> int | None:
    """Spend one of the person's unused codes; how many remain after it, or None when the code is not one."""
    if not looks_like_recovery_code(code):
        return None
    with transaction.atomic():
        row = RecoveryCode.objects.filter(user=user, digest=_digest(code), used_at__isnull=True).first()
        # Claimed by the UPDATE itself: of two requests giving the same code at once, one alone succeeds.
        claimed = row is not None and RecoveryCode.objects.filter(pk=row.pk, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        if row is None or not claimed:
            return None
        left = remaining(user)
        audit.record(
            verb="security.recovery_code_used", actor=user, subject=row, details={"user": user.pk, "remaining": left}
        )
    security_log.info("recovery code used by user %s, %s left", user.pk, left)
    return left
