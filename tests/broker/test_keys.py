"""The broker's signing keys: custody, signatures checked by independent code, rotation, publication."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from io import StringIO
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory

from broker import keys
from broker.jwks import jwks_view
from broker.models import SigningKey
from broker.transparency.verify import (
    VerificationError,
    note_verifier_key,
    parse_note_verifier_key,
    verify_jws_es256,
    verify_note_ed25519,
)

NOTE_NAME = "tiers.example/log"
CHECKPOINT = "tiers.example/log\n3\nVYBDPBpzdM3tLCf9ncyM7ypSlv8GCh9S01K6z+jbZUY=\n"


@pytest.fixture(autouse=True)
def _cold_cache() -> None:
    """Each test starts like a fresh process, with no decrypted key in memory."""
    keys.forget_cached_keys()


def b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def verify_with_cryptography(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """Check a compact ES256 JWS with nothing but the cryptography package."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url(header_b64))
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert (jwk["kty"], jwk["crv"], header["alg"]) == ("EC", "P-256", "ES256")
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url(jwk["x"]), "big"), int.from_bytes(b64url(jwk["y"]), "big"), ec.SECP256R1()
    ).public_key()
    signature = b64url(signature_b64)
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    public.verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    return header


def active_keys() -> list[SigningKey]:
    return list(SigningKey.objects.filter(state=SigningKey.State.ACTIVE))


@pytest.mark.django_db
def test_first_use_generates_exactly_one_active_key_per_purpose() -> None:
    jws_key = keys.active_key("jws")
    note_key = keys.active_key("note")
    assert keys.active_key("jws") == jws_key
    assert keys.active_key("note") == note_key
    assert {(k.purpose, k.algorithm) for k in active_keys()} == {("jws", "ES256"), ("note", "EdDSA")}
    assert SigningKey.objects.count() == 2


@pytest.mark.django_db
def test_the_kid_is_the_rfc_7638_thumbprint_of_the_public_key() -> None:
    jwk = keys.active_key("jws").public_jwk
    canonical = json.dumps({m: jwk[m] for m in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical.encode())
    thumbprint = base64.urlsafe_b64encode(digest.finalize()).rstrip(b"=").decode()
    assert jwk["kid"] == thumbprint == keys.active_key("jws").kid


@pytest.mark.django_db
def test_the_private_key_is_stored_encrypted_and_bound_to_its_kid(settings: Any) -> None:
    key = keys.active_key("jws")
    sealed = bytes(SigningKey.objects.get(pk=key.pk).encrypted_private_key)
    der = keys.unseal(sealed, aad=key.kid.encode())
    private = serialization.load_der_private_key(der, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    row = json.dumps(key.public_jwk).encode() + sealed
    assert der not in row
    assert scalar not in row
    assert "d" not in key.public_jwk
    with pytest.raises(InvalidTag):
        keys.unseal(sealed, aad=b"another-kid")
    settings.TIERS_KEK = os.urandom(32)
    with pytest.raises(InvalidTag):
        keys.unseal(sealed, aad=key.kid.encode())


def test_sealing_uses_a_fresh_nonce_and_detects_tampering() -> None:
    first, second = keys.seal(b"data key", aad=b"k"), keys.seal(b"data key", aad=b"k")
    assert first[:12] != second[:12]
    assert keys.unseal(first, aad=b"k") == b"data key"
    tampered = first[:-1] + bytes([first[-1] ^ 1])
    with pytest.raises(InvalidTag):
        keys.unseal(tampered, aad=b"k")
    with pytest.raises(InvalidTag):
        keys.unseal(first[:20], aad=b"k")


@pytest.mark.django_db
def test_a_signed_jws_verifies_with_the_standalone_verifier_and_with_cryptography_alone() -> None:
    token = keys.sign_jws(b'{"tree_size": 3}', typ="tiers-checkpoint+jwt")
    jwks = keys.jwks()
    assert verify_jws_es256(token, jwks) == {"tree_size": 3}
    header = verify_with_cryptography(token, jwks)
    assert header == {"alg": "ES256", "kid": keys.active_key("jws").kid, "typ": "tiers-checkpoint+jwt"}


@pytest.mark.django_db
def test_a_forged_jws_does_not_verify() -> None:
    header_b64, _, signature_b64 = keys.sign_jws(b'{"tree_size": 3}').split(".")
    other_payload = base64.urlsafe_b64encode(b'{"tree_size": 4}').rstrip(b"=").decode()
    forged = f"{header_b64}.{other_payload}"
    with pytest.raises(VerificationError):
        verify_jws_es256(f"{forged}.{signature_b64}", keys.jwks())
    with pytest.raises(InvalidSignature):
        verify_with_cryptography(f"{forged}.{signature_b64}", keys.jwks())


@pytest.mark.django_db
def test_extra_headers_are_signed_but_cannot_replace_the_key_s_own() -> None:
    token = keys.sign_jws(b"{}", extra_headers={"cty": "json"})
    assert verify_with_cryptography(token, keys.jwks())["cty"] == "json"
    with pytest.raises(ValueError, match="alg and kid"):
        keys.sign_jws(b"{}", extra_headers={"kid": "someone-else"})


@pytest.mark.django_db
def test_a_signed_note_verifies_with_the_standalone_verifier() -> None:
    note = keys.sign_note(CHECKPOINT, name=NOTE_NAME)
    name, public = parse_note_verifier_key(keys.note_verifier_key(NOTE_NAME))
    assert (name, [public]) == (NOTE_NAME, keys.note_public_keys())
    assert keys.note_verifier_key(NOTE_NAME) == note_verifier_key(NOTE_NAME, public)
    assert verify_note_ed25519(note, NOTE_NAME, public) == CHECKPOINT
    assert note.startswith(CHECKPOINT + "\n\u2014 " + NOTE_NAME + " ")
    with pytest.raises(VerificationError):
        verify_note_ed25519(note.replace("\n3\n", "\n4\n"), NOTE_NAME, public)


@pytest.mark.django_db
def test_a_note_text_without_final_newline_or_a_bad_name_is_refused() -> None:
    with pytest.raises(ValueError, match="newline"):
        keys.sign_note("tiers.example/log\n3", name=NOTE_NAME)
    with pytest.raises(ValueError, match="name"):
        keys.sign_note(CHECKPOINT, name="tiers log")


@pytest.mark.django_db
def test_the_jwks_publishes_both_purposes_and_no_private_member() -> None:
    jws_kid, note_kid = keys.active_key("jws").kid, keys.active_key("note").kid
    published = {k["kid"]: k for k in keys.jwks()["keys"]}
    assert published[jws_kid] | {"x": "", "y": ""} == {
        "kty": "EC",
        "crv": "P-256",
        "x": "",
        "y": "",
        "kid": jws_kid,
        "alg": "ES256",
        "use": "sig",
    }
    assert published[note_kid] | {"x": ""} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "",
        "kid": note_kid,
        "alg": "EdDSA",
        "use": "sig",
    }
    assert '"d"' not in json.dumps(keys.jwks())


@pytest.mark.django_db
def test_the_jwks_view_answers_cacheable_json() -> None:
    keys.active_key("jws")
    response = jwks_view(RequestFactory().get("/oauth/jwks"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "public, max-age=300"
    assert json.loads(response.content) == keys.jwks()
    assert jwks_view(RequestFactory().post("/oauth/jwks")).status_code == 405


@pytest.mark.django_db
def test_after_rotation_the_new_key_signs_and_old_signatures_still_verify() -> None:
    old_token = keys.sign_jws(b'{"n": 1}')
    old_kid = keys.active_key("jws").kid

    new = keys.key_rotate(actor=None, purpose="jws")

    old = SigningKey.objects.get(kid=old_kid)
    assert (old.state, new.state) == (SigningKey.State.RETIRED, SigningKey.State.ACTIVE)
    assert old.retired_at is not None
    new_token = keys.sign_jws(b'{"n": 2}')
    jwks = keys.jwks()
    assert verify_with_cryptography(new_token, jwks)["kid"] == new.kid != old_kid
    assert {old_kid, new.kid} <= {k["kid"] for k in jwks["keys"]}
    assert verify_jws_es256(old_token, jwks) == {"n": 1}
    assert verify_with_cryptography(old_token, jwks)["kid"] == old_kid


@pytest.mark.django_db
def test_after_note_rotation_old_notes_verify_with_a_published_key() -> None:
    old_note = keys.sign_note(CHECKPOINT, name=NOTE_NAME)
    keys.key_rotate(actor=None, purpose="note")
    new_note = keys.sign_note(CHECKPOINT, name=NOTE_NAME)
    published = keys.note_public_keys()
    assert len(published) == 2
    _, active = parse_note_verifier_key(keys.note_verifier_key(NOTE_NAME))
    verify_note_ed25519(new_note, NOTE_NAME, active)
    retired = next(k for k in published if k != active)
    verify_note_ed25519(old_note, NOTE_NAME, retired)


@pytest.mark.django_db
def test_a_rotation_in_another_process_is_seen_within_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    keys.sign_jws(b"{}")  # the old key is now decrypted and remembered here
    old = keys.active_key("jws")
    # Another process rotates: only the database changes, this process's memory does not.
    SigningKey.objects.filter(pk=old.pk).update(state=SigningKey.State.RETIRED)
    new = keys._new_key("jws")
    new.save()
    # For a moment this process still signs with the retired key, which stays published and valid.
    assert verify_with_cryptography(keys.sign_jws(b"{}"), keys.jwks())["kid"] == old.kid
    later = time.monotonic() + keys.ACTIVE_KEY_SECONDS + 1
    monkeypatch.setattr(keys.time, "monotonic", lambda: later)
    assert verify_with_cryptography(keys.sign_jws(b"{}"), keys.jwks())["kid"] == new.kid


@pytest.mark.django_db
def test_rotating_without_an_active_key_just_creates_one() -> None:
    new = keys.key_rotate(actor=None, purpose="note")
    assert active_keys() == [new]


@pytest.mark.django_db
def test_a_first_use_that_loses_the_race_returns_the_winner_s_key(monkeypatch: pytest.MonkeyPatch) -> None:
    new_key = keys._new_key
    winner: list[SigningKey] = []

    def generate_while_another_process_wins(purpose: str) -> SigningKey:
        # Between our empty read and our insert, another process commits its key.
        winner.append(new_key(purpose))
        winner[0].save()
        return new_key(purpose)

    monkeypatch.setattr(keys, "_new_key", generate_while_another_process_wins)
    assert keys.active_key("jws") == winner[0]
    assert active_keys() == winner
    keys.sign_jws(b"{}")  # the caller's transaction survived the lost insert


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_uses_end_with_one_active_key() -> None:
    start = threading.Barrier(4)
    kids: list[str] = []

    def first_use() -> None:
        try:
            start.wait()
            kids.append(keys.active_key("jws").kid)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 4
    assert set(kids) == {k.kid for k in active_keys()}
    assert len(active_keys()) == 1


@pytest.mark.django_db
def test_keys_generate_creates_missing_keys_once_and_prints_their_kids() -> None:
    out = StringIO()
    call_command("keys_generate", stdout=out)
    kids = {keys.active_key("jws").kid, keys.active_key("note").kid}
    assert all(f"{kid} (created)" in out.getvalue() for kid in kids)
    again = StringIO()
    call_command("keys_generate", stdout=again)
    assert all(f"{kid} (kept)" in again.getvalue() for kid in kids)
    assert SigningKey.objects.count() == 2


@pytest.mark.django_db
def test_keys_rotate_prints_the_old_and_new_kid() -> None:
    old_kid = keys.active_key("note").kid
    out = StringIO()
    call_command("keys_rotate", "--purpose", "note", stdout=out)
    new_kid = keys.active_key("note").kid
    assert out.getvalue() == f"note retired {old_kid}\nnote active {new_kid}\n"
    assert new_kid != old_kid


@pytest.mark.django_db
def test_rotating_a_key_is_audited_with_both_key_ids() -> None:
    import json

    from broker.models import AuditBody

    old = keys.active_key("jws")
    new = keys.key_rotate(actor=None, purpose="jws")
    body = AuditBody.objects.get(verb="key.rotated")
    assert body.subject == f"signing_key:{new.kid}"
    assert json.loads(bytes(body.canonical))["details"] == {"purpose": "jws", "retired": old.kid, "active": new.kid}
