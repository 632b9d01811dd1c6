"""A passkey authenticator in software, answering WebAuthn ceremonies as a browser and its authenticator would.

It builds real answers, byte for byte as WebAuthn Level 2 defines them: an EC P-256 key (ES256), the
authenticator data (the RP id's SHA-256, the flags, the sign count and, at registration, the attested
credential data with the COSE public key), a "none" attestation object in CBOR, the client data JSON
with the challenge and the origin, and a DER ECDSA signature over the authenticator data and the client
data's hash. The server checks them with the real py_webauthn library; nothing is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_USER_PRESENT = 0x01
FLAG_USER_VERIFIED = 0x04
FLAG_ATTESTED_DATA = 0x40
AAGUID = bytes(16)  # "none" attestation: the authenticator's model is not told


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """One credential: a P-256 key pair, its id and a sign count (which may stay at zero, as many passkeys do)."""

    def __init__(self, *, counts: bool = True) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.sign_count = 0
        self.counts = counts

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        # COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y.
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def authenticator_data(self, rp_id: str, *, sign_count: int, attested: bool = False) -> bytes:
        flags = FLAG_USER_PRESENT | FLAG_USER_VERIFIED | (FLAG_ATTESTED_DATA if attested else 0)
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + sign_count.to_bytes(4, "big")
        if attested:
            credential = self.credential_id
            data += AAGUID + len(credential).to_bytes(2, "big") + credential + self.cose_public_key()
        return data

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()

    def create(self, options: dict[str, Any], *, origin: str, rp_id: str | None = None) -> dict[str, Any]:
        """The answer of navigator.credentials.create() to registration options, as passkeys.js sends it."""
        client_data = self.client_data("webauthn.create", options["challenge"], origin)
        auth_data = self.authenticator_data(rp_id or options["rp"]["id"], sign_count=self.sign_count, attested=True)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return self.answer(client_data, attestationObject=b64url(attestation), transports=["internal", "hybrid"])

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str,
        rp_id: str | None = None,
        sign_count: int | None = None,
        signer: ec.EllipticCurvePrivateKey | None = None,
    ) -> dict[str, Any]:
        """The answer of navigator.credentials.get() to authentication options, signed with this credential's key
        (or with `signer`, to forge one), the counter moved on (or set to `sign_count`)."""
        if sign_count is None:
            sign_count = self.sign_count + 1 if self.counts else 0
        self.sign_count = sign_count
        client_data = self.client_data("webauthn.get", options["challenge"], origin)
        auth_data = self.authenticator_data(rp_id or options["rpId"], sign_count=sign_count)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = (signer or self.key).sign(signed, ec.ECDSA(hashes.SHA256()))
        return self.answer(
            client_data, authenticatorData=b64url(auth_data), signature=b64url(signature), userHandle=None
        )

    def answer(self, client_data: bytes, **response: Any) -> dict[str, Any]:
        """A credential as passkeys.js sends it: this credential's ids, the client data and `response`'s fields."""
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data), **response},
        }
