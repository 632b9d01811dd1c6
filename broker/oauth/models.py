"""OAuth clients and the record of every access token issued."""

from __future__ import annotations

import hashlib
import hmac

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from broker.models import Organisation, User

SECRET_PREFIX = "tcs_"  # noqa: S105 (a prefix, not a secret): a Tiers client secret is recognisable in logs and secret scanners


def hash_secret(secret: str) -> str:
    """SHA-256 suits random 256-bit secrets: a password hasher's cost buys nothing against them."""
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


class OAuthClient(models.Model):
    """An organisation's piece of software that calls Tiers with client credentials."""

    class AuthMethod(models.TextChoices):
        PRIVATE_KEY_JWT = "private_key_jwt", "private_key_jwt (RFC 7523)"
        CLIENT_SECRET_BASIC = "client_secret_basic", "client_secret_basic"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="oauth_clients")
    name = models.CharField(max_length=100)
    client_id = models.CharField(max_length=64, unique=True)
    auth_method = models.CharField(max_length=24, choices=AuthMethod.choices)
    secret_hash = models.CharField(max_length=80, blank=True)
    secret_hint = models.CharField(max_length=12, blank=True, help_text=_("the secret's first characters"))
    jwks = models.JSONField(null=True, blank=True, help_text=_("the client's public keys, for private_key_jwt"))
    jwks_uri = models.URLField(blank=True)
    scopes = models.JSONField(default=list, help_text=_("scopes the client may ask for"))
    dpop_bound_access_tokens = models.BooleanField(default=False)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    disabled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organisation", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(auth_method="client_secret_basic") | ~Q(secret_hash=""),
                name="oauth_client_secret_method_has_secret",
            ),
            models.CheckConstraint(
                condition=~Q(auth_method="private_key_jwt") | Q(jwks__isnull=False) | ~Q(jwks_uri=""),
                name="oauth_client_key_method_has_keys",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None and self.organisation.is_verified

    # --- authlib's ClientMixin ----------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_hash:
            return False
        return hmac.compare_digest(hash_secret(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return self.is_active and method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class IssuedToken(models.Model):
    """One access token Tiers issued, by its id (never the token itself): for revocation and introspection."""

    jti = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(OAuthClient, on_delete=models.CASCADE, related_name="tokens")
    grant = models.ForeignKey("sharing.Grant", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=500, blank=True)
    audience = models.CharField(max_length=300)
    jkt = models.CharField(max_length=64, blank=True, help_text=_("DPoP key thumbprint the token is bound to"))
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="issued_token_expiry_idx")]

    def __str__(self) -> str:
        return f"token {self.jti}"


class UsedAssertion(models.Model):
    """A client assertion's jti, kept until it expires so that it is accepted once (RFC 7523 §3)."""

    client = models.ForeignKey(OAuthClient, on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=200)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "jti"], name="used_assertion_once")]

    def __str__(self) -> str:
        return f"assertion {self.jti}"
