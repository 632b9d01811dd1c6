"""The broker's signing keys: generation, custody under TIERS_KEK, signing and publication."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey

from broker import audit
from broker.errors import Conflict
from broker.models import SigningKey, User

Purpose = SigningKey.Purpose
PrivateKey = ec.EllipticCurvePrivateKey | Ed25519PrivateKey

_NONCE_SIZE = 12
_TAG_SIZE = 16
_ALGORITHMS = {Purpose.JWS: "ES256", Purpose.NOTE: "EdDSA"}
# Only these JWK members are ever published; anything else in a row (a private "d") is not.
_PUBLIC_JWK_MEMBERS = ("kty", "crv", "x", "y", "kid", "alg", "use")
_NOTE_ED25519 = b"\x01"
_NOTE_DASH = "\u2014"

# Which key is active, per purpose, remembered a few seconds: signing is on hot paths (tokens),
# and a key another process just retired stays published and valid, so using it a moment
# longer is harmless.
ACTIVE_KEY_SECONDS = 5.0
_active: dict[str, tuple[SigningKey, float]] = {}
_signers: dict[str, ECKey] = {}

# Decrypted private keys by kid. A kid names one key forever, so an entry never goes stale;
# which kid is active is read from the database on each signature, so rotation elsewhere shows.
_private_keys: dict[str, PrivateKeyTypes] = {}


# --- Custody ------------------------------------------------------------------------------------


def seal(plaintext: bytes, *, aad: bytes, kek: bytes | None = None) -> bytes:
    """Encrypt under TIERS_KEK (or the given KEK) with AES-256-GCM: 12-byte nonce, then ciphertext and tag."""
    nonce = os.urandom(_NONCE_SIZE)
    return nonce + AESGCM(kek or settings.TIERS_KEK).encrypt(nonce, plaintext, aad)


def unseal(sealed: bytes, *, aad: bytes, kek: bytes | None = None) -> bytes:
    """Decrypt what seal() produced; raise InvalidTag for another KEK, another aad or tampering.

    Without an explicit KEK, TIERS_KEK is tried, then TIERS_KEK_PREVIOUS if set: while a KEK
    change is under way (before `kek_rewrap` has run), keys sealed under the old one still open.
    """
    if len(sealed) < _NONCE_SIZE + _TAG_SIZE:
        raise InvalidTag
    nonce, ciphertext = sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:]
    if kek is not None:
        return AESGCM(kek).decrypt(nonce, ciphertext, aad)
    try:
        return AESGCM(settings.TIERS_KEK).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        if settings.TIERS_KEK_PREVIOUS is None:
            raise
        return AESGCM(settings.TIERS_KEK_PREVIOUS).decrypt(nonce, ciphertext, aad)


def forget_cached_keys() -> None:
    """Drop the keys this process holds (tests, or after changing the KEK or rotating)."""
    _private_keys.clear()
    _signers.clear()
    _active.clear()


def _private_key(key: SigningKey) -> PrivateKeyTypes:
    """Return the key row's private half, decrypting it only the first time in this process."""
    private = _private_keys.get(key.kid)
    if private is None:
        # PostgreSQL hands BinaryField values back as memoryview.
        der = unseal(bytes(key.encrypted_private_key), aad=key.kid.encode("ascii"))
        private = _private_keys[key.kid] = serialization.load_der_private_key(der, password=None)
    return private


def _jws_private_key(key: SigningKey) -> ec.EllipticCurvePrivateKey:
    """Return a JWS key's private half, checked to be P-256."""
    private = _private_key(key)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise TypeError(f"key {key.kid} does not hold a P-256 private key")
    return private


def _note_private_key(key: SigningKey) -> Ed25519PrivateKey:
    """Return a note key's private half, checked to be Ed25519."""
    private = _private_key(key)
    if not isinstance(private, Ed25519PrivateKey):
        raise TypeError(f"key {key.kid} does not hold an Ed25519 private key")
    return private


def _new_key(purpose: str) -> SigningKey:
    """Generate a key pair and return its unsaved row, the private half sealed to its kid."""
    private: PrivateKey
    if purpose == Purpose.JWS:
        private = ec.generate_private_key(ec.SECP256R1())
        jwk: ECKey | OKPKey = ECKey.import_key(private)
    else:
        private = Ed25519PrivateKey.generate()
        jwk = OKPKey.import_key(private)
    kid = jwk.thumbprint()
    algorithm = _ALGORITHMS[Purpose(purpose)]
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(
        kid=kid,
        purpose=purpose,
        algorithm=algorithm,
        public_jwk={**jwk.as_dict(private=False), "kid": kid, "alg": algorithm, "use": "sig"},
        # The kid as aad binds the ciphertext to its row: moved to another row, it fails to open.
        encrypted_private_key=seal(der, aad=kid.encode("ascii")),
    )


# --- Active keys and rotation -------------------------------------------------------------------


def active_key(purpose: str) -> SigningKey:
    """Return the active key of this purpose, generating it on first use."""
    purpose = Purpose(purpose)
    remembered = _active.get(purpose)
    if remembered is not None and time.monotonic() - remembered[1] < ACTIVE_KEY_SECONDS:
        return remembered[0]
    found = SigningKey.objects.filter(purpose=purpose, state=SigningKey.State.ACTIVE).order_by()[:1]
    key = found[0] if found else None
    if key is not None:
        _active[purpose] = (key, time.monotonic())
        return key
    candidate = _new_key(purpose)
    try:
        # The savepoint keeps a caller's transaction usable when another process won the race.
        with transaction.atomic():
            candidate.save(force_insert=True)
    except IntegrityError:
        return SigningKey.objects.get(purpose=purpose, state=SigningKey.State.ACTIVE)
    return candidate


def key_rotate(*, actor: User | None, purpose: str) -> SigningKey:
    """Retire the active key of this purpose and make a new one active; actor None is the system."""
    purpose = Purpose(purpose)
    new = _new_key(purpose)  # key generation stays outside the transaction
    try:
        with transaction.atomic():
            old = SigningKey.objects.select_for_update().filter(purpose=purpose, state=SigningKey.State.ACTIVE).first()
            if old is not None:
                old.state = SigningKey.State.RETIRED
                old.retired_at = timezone.now()
                old.save(update_fields=["state", "retired_at"])
            new.save(force_insert=True)
            audit.record(
                verb="key.rotated",
                actor=actor,
                subject=f"signing_key:{new.kid}",
                details={"purpose": purpose, "retired": old.kid if old else None, "active": new.kid},
            )
            # This process signs with the new key at once (and again once committed, in case
            # a concurrent read remembered the old one in between).
            _active.clear()
            transaction.on_commit(_active.clear)
            return new
    except IntegrityError:
        # A concurrent rotation committed its new key after our lock found the old one gone.
        raise Conflict(f"The {purpose} key was rotated concurrently; try again.") from None


# --- Signing ------------------------------------------------------------------------------------


def sign_jws(payload: bytes, *, typ: str | None = None, extra_headers: dict[str, Any] | None = None) -> str:
    """Sign a payload as a compact ES256 JWS with the active JWS key."""
    extra = dict(extra_headers or {})
    if {"alg", "kid", "typ"} & extra.keys():
        raise ValueError("alg and kid are the key's, and typ has its own argument")
    key = active_key(Purpose.JWS)
    header: dict[str, Any] = {"alg": "ES256", "kid": key.kid, **extra}
    if typ is not None:
        header["typ"] = typ
    signer = _signers.get(key.kid)
    if signer is None:
        signer = _signers[key.kid] = ECKey.import_key(_jws_private_key(key))
    return jws.serialize_compact(header, payload, signer, algorithms=["ES256"])


def sign_note(text: str, *, name: str) -> str:
    """Return the C2SP signed note: the text, a blank line and the active note key's signature line."""
    if not text.endswith("\n"):
        raise ValueError("a signed note's text must end with a newline")
    _check_note_name(name)
    key = active_key(Purpose.NOTE)
    private = _note_private_key(key)
    key_id = _note_key_id(name, _raw_public_key(key))
    signature = base64.b64encode(key_id + private.sign(text.encode("utf-8"))).decode("ascii")
    return f"{text}\n{_NOTE_DASH} {name} {signature}\n"


def note_verifier_key(name: str) -> str:
    """Return the active note key as a ``<name>+<hex key id>+<base64(0x01 || key)>`` verifier key."""
    _check_note_name(name)
    public = _raw_public_key(active_key(Purpose.NOTE))
    encoded = base64.b64encode(_NOTE_ED25519 + public).decode("ascii")
    return f"{name}+{_note_key_id(name, public).hex()}+{encoded}"


def note_public_keys() -> list[bytes]:
    """Return the raw Ed25519 public keys of every note key, active and retired, newest first."""
    return [_raw_public_key(key) for key in SigningKey.objects.filter(purpose=Purpose.NOTE)]


def _note_key_id(name: str, public: bytes) -> bytes:
    """Return the signed-note key ID: SHA-256(name || 0x0A || 0x01 || key), first 4 bytes."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _NOTE_ED25519 + public).digest()[:4]


def _check_note_name(name: str) -> None:
    """Refuse a key name the signed-note format cannot carry."""
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise ValueError(f"invalid note key name {name!r}: empty, or has a space or '+'")


def _raw_public_key(key: SigningKey) -> bytes:
    """Return the 32 raw bytes of an Ed25519 key from its JWK's x member."""
    x: str = key.public_jwk["x"]
    return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))


# --- Publication --------------------------------------------------------------------------------


def jwks() -> dict[str, list[dict[str, str]]]:
    """Return the public JWKS: every JWS and note key, active and retired, never a private member."""
    keys = SigningKey.objects.order_by("purpose", "-created_at")
    return {"keys": [{m: key.public_jwk[m] for m in _PUBLIC_JWK_MEMBERS if m in key.public_jwk} for key in keys]}
