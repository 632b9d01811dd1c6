"""What the security controls keep: second factors, failed-attempt counts, replayable responses."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TOTPDevice(models.Model):
    """A person's authenticator app (RFC 6238 TOTP); usable once confirmed with a first code.

    The base32 secret is sealed under TIERS_KEK (broker.keys.seal); `last_used_step` makes
    every code single-use: a code is accepted only for a time step after the last one used.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device")
    sealed_secret = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_step = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"authenticator of {self.user}"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class LoginAttempt(models.Model):
    """One attempt against a limit (a password or a second-factor code), counted here while Redis is down.

    The key (a username, an address, a user id) is stored as a SHA-256 digest: only equality matters.
    Rows older than the longest window are pruned as new ones are written.
    """

    scope = models.CharField(max_length=32)
    key_digest = models.CharField(max_length=64)
    attempted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["scope", "key_digest", "attempted_at"], name="login_attempt_lookup_idx"),
            models.Index(fields=["attempted_at"], name="login_attempt_age_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} attempt at {self.attempted_at:%Y-%m-%d %H:%M:%S}"


class IdempotentResponse(models.Model):
    """The answer to a creating API request sent with an Idempotency-Key, replayed for a retry of it.

    Keys are per caller (`user:<id>` or `client:<client_id>`); the request's method, path and body
    are kept as a digest, so that the same key with another request is recognised and refused.
    """

    caller = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64, help_text=_("SHA-256 of method, path and body"))
    status = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100)
    body = models.BinaryField()
    location = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotent_response_unique_key"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotent_response_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.caller} {self.key}"


class Passkey(models.Model):
    """A person's WebAuthn credential (a passkey or a security key), usable instead of a TOTP code.

    Only what checks a signature is kept: the credential's id and its public key (COSE), never a
    secret. `sign_count` is the authenticator's counter at the last use: when it keeps one, each
    use must show a larger count, or the credential may have been cloned.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkeys")
    name = models.CharField(max_length=64)
    credential_id = models.BinaryField(max_length=1023)
    public_key = models.BinaryField()
    sign_count = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["credential_id"], name="passkey_unique_credential"),
            models.CheckConstraint(condition=models.Q(sign_count__gte=0), name="passkey_sign_count_not_negative"),
        ]

    def __str__(self) -> str:
        return f"passkey {self.name!r} of {self.user}"


class RecoveryCode(models.Model):
    """One single-use code that stands in for the second factor when the device is lost.

    Only the SHA-256 digest of the code is kept: a code has about 79 random bits, so a digest
    cannot be turned back into a code. A used code keeps its row (with `used_at`) until the
    next set replaces it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes")
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "digest"], name="recovery_code_unique_per_user"),
        ]

    def __str__(self) -> str:
        return f"recovery code of {self.user}"
