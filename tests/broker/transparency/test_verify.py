"""Tests for the standalone verifier: Merkle proofs, ES256 JWS checkpoints, signed notes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey

from broker.transparency import merkle
from broker.transparency.verify import (
    Checkpoint,
    VerificationError,
    leaf_hash,
    note_key_id,
    note_verifier_key,
    parse_checkpoint_note,
    parse_note_verifier_key,
    verify_checkpoint_jws,
    verify_consistency,
    verify_inclusion,
    verify_jws_es256,
    verify_note_ed25519,
)

# --- helpers ---


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def tree(size: int) -> tuple[dict[tuple[int, int], bytes], list[bytes]]:
    """Return the stored nodes and the leaf hashes of a tree of ``size`` entries."""
    hashes_ = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(size)]
    nodes = {(level, index): value for level, index, value in merkle.append_nodes(0, {}, hashes_)}
    return nodes, hashes_


def inclusion(size: int, index: int) -> tuple[bytes, list[bytes], bytes]:
    nodes, leaves = tree(size)
    proof = merkle.inclusion_proof(index, size, nodes)
    return leaves[index], proof, merkle.root_from(size, nodes)


def consistency(first: int, second: int) -> tuple[bytes, bytes, list[bytes]]:
    nodes, _ = tree(second)
    proof = merkle.consistency_proof(first, second, nodes)
    return merkle.root_from(first, nodes), merkle.root_from(second, nodes), proof


def flip(data: bytes, position: int = 0) -> bytes:
    return data[:position] + bytes([data[position] ^ 1]) + data[position + 1 :]


# --- inclusion ---


def test_leaf_hash_matches_the_merkle_module() -> None:
    assert leaf_hash(b"entry") == merkle.leaf_hash(b"entry")


def test_inclusion_proof_is_accepted_when_correct() -> None:
    leaf, proof, root = inclusion(21, 13)
    verify_inclusion(leaf, 13, 21, proof, root)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, i, n, p, r: (h, i, n, [*p, p[0]], r),
        lambda h, i, n, p, r: (h, i, n, p[:-1], r),
        lambda h, i, n, p, r: (h, i, n, [], r),
        lambda h, i, n, p, r: (h, i, n, [p[0][:31], *p[1:]], r),
        lambda h, i, n, p, r: (h, i, n, [flip(p[0]), *p[1:]], r),
        lambda h, i, n, p, r: (flip(h), i, n, p, r),
        lambda h, i, n, p, r: (h, i, n, p, flip(r, 31)),
        lambda h, i, n, p, r: (h, i, n, p, r + b"\x00"),
        lambda h, i, n, p, r: (h[:31], i, n, p, r),
        lambda h, i, n, p, r: (h, i + 1, n, p, r),
        lambda h, i, n, p, r: (h, n, n, p, r),
        lambda h, i, n, p, r: (h, -1, n, p, r),
        lambda h, i, n, p, r: (h, i, n * 2, p, r),
        lambda h, i, n, p, r: (h, i, 0, p, r),
    ],
    ids=[
        "proof-too-long",
        "proof-too-short",
        "proof-empty",
        "proof-hash-truncated",
        "proof-hash-changed",
        "leaf-changed",
        "root-changed",
        "root-too-long",
        "leaf-too-short",
        "wrong-index",
        "index-equal-to-size",
        "negative-index",
        "wrong-size",
        "zero-size",
    ],
)
def test_inclusion_proof_is_rejected_when_anything_is_off(
    tamper: Callable[..., tuple[bytes, int, int, list[bytes], bytes]],
) -> None:
    leaf, proof, root = inclusion(21, 13)
    args = tamper(leaf, 13, 21, proof, root)
    with pytest.raises(VerificationError):
        verify_inclusion(*args)


# --- consistency ---


def test_consistency_proof_is_accepted_when_correct() -> None:
    root1, root2, proof = consistency(7, 19)
    verify_consistency(7, 19, root1, root2, proof)


def test_consistency_between_equal_sizes_needs_an_empty_proof_and_equal_roots() -> None:
    root, _, _ = consistency(5, 5)
    verify_consistency(5, 5, root, root, [])
    with pytest.raises(VerificationError):
        verify_consistency(5, 5, root, root, [root])
    with pytest.raises(VerificationError):
        verify_consistency(5, 5, root, flip(root), [])


def test_consistency_from_the_empty_tree_is_rejected_as_meaningless() -> None:
    _, root2, _ = consistency(1, 4)
    with pytest.raises(VerificationError, match="empty tree"):
        verify_consistency(0, 4, merkle.EMPTY_ROOT, root2, [])


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s1, s2, r1, r2, p: (s1, s2, r1, r2, [*p, p[0]]),
        lambda s1, s2, r1, r2, p: (s1, s2, r1, r2, p[:-1]),
        lambda s1, s2, r1, r2, p: (s1, s2, r1, r2, []),
        lambda s1, s2, r1, r2, p: (s1, s2, r1, r2, [flip(p[0]), *p[1:]]),
        lambda s1, s2, r1, r2, p: (s1, s2, r1, r2, [*p[:-1], p[-1][:31]]),
        lambda s1, s2, r1, r2, p: (s1, s2, flip(r1), r2, p),
        lambda s1, s2, r1, r2, p: (s1, s2, r1, flip(r2), p),
        lambda s1, s2, r1, r2, p: (s1, s2, r2, r1, p),
        lambda s1, s2, r1, r2, p: (s2, s1, r1, r2, p),
        lambda s1, s2, r1, r2, p: (s1 + 1, s2, r1, r2, p),
        lambda s1, s2, r1, r2, p: (s1, s2 * 2, r1, r2, p),
    ],
    ids=[
        "proof-too-long",
        "proof-too-short",
        "proof-empty",
        "proof-hash-changed",
        "proof-hash-truncated",
        "first-root-changed",
        "second-root-changed",
        "roots-swapped",
        "sizes-swapped",
        "wrong-first-size",
        "wrong-second-size",
    ],
)
def test_consistency_proof_is_rejected_when_anything_is_off(
    tamper: Callable[..., tuple[int, int, bytes, bytes, list[bytes]]],
) -> None:
    root1, root2, proof = consistency(7, 19)
    with pytest.raises(VerificationError):
        verify_consistency(*tamper(7, 19, root1, root2, proof))


# --- ES256 JWS ---

KID = "tiers-checkpoint-2026"
ROOT = hashlib.sha256(b"some root").digest()
TIMESTAMP = "2026-01-02T03:04:05Z"
CHECKPOINT: dict[str, Any] = {
    "tree_size": 40,
    "root_hash": base64.b64encode(ROOT).decode(),
    "timestamp": TIMESTAMP,
}


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": KID})


@pytest.fixture(scope="module")
def other_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": KID})


@pytest.fixture(scope="module")
def jwks(key: ECKey) -> dict[str, Any]:
    old = ECKey.generate_key("P-256", parameters={"kid": "tiers-checkpoint-2025"})
    return {"keys": [old.as_dict(private=False), key.as_dict(private=False)]}


def joserfc_token(payload: object, signer: ECKey, kid: str = KID) -> str:
    """Sign with joserfc, an implementation independent of the verifier."""
    data = json.dumps(payload, separators=(",", ":")).encode()
    return jws.serialize_compact({"alg": "ES256", "kid": kid}, data, signer)


def private(key: ECKey) -> ec.EllipticCurvePrivateKey:
    assert key.private_key is not None
    return key.private_key


def raw_es256_token(header: dict[str, Any], payload: object, signer: ECKey) -> str:
    """Sign arbitrary headers by hand, so only the header under test differs."""
    signing_input = f"{b64url_json(header)}.{b64url_json(payload)}"
    der = private(signer).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def test_es256_jws_from_joserfc_is_accepted(key: ECKey, jwks: dict[str, Any]) -> None:
    assert verify_jws_es256(joserfc_token({"hello": "world"}, key), jwks) == {"hello": "world"}


def test_hand_signed_es256_jws_is_accepted(key: ECKey, jwks: dict[str, Any]) -> None:
    token = raw_es256_token({"alg": "ES256", "kid": KID, "typ": "JWT"}, {"n": 1}, key)
    assert verify_jws_es256(token, jwks) == {"n": 1}


def test_checkpoint_jws_returns_a_checkpoint(key: ECKey, jwks: dict[str, Any]) -> None:
    checkpoint = verify_checkpoint_jws(joserfc_token(CHECKPOINT, key), jwks)
    assert checkpoint == Checkpoint(tree_size=40, root_hash=ROOT, timestamp=TIMESTAMP)


def test_jws_signed_by_another_key_is_rejected(other_key: ECKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(VerificationError, match="does not verify"):
        verify_jws_es256(joserfc_token(CHECKPOINT, other_key), jwks)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "ES384", "es256", "RS256", ""])
def test_jws_with_any_alg_but_es256_is_rejected(key: ECKey, jwks: dict[str, Any], alg: str) -> None:
    token = raw_es256_token({"alg": alg, "kid": KID}, CHECKPOINT, key)
    with pytest.raises(VerificationError, match="alg"):
        verify_jws_es256(token, jwks)


def test_jws_with_alg_none_and_no_signature_is_rejected(jwks: dict[str, Any]) -> None:
    token = f"{b64url_json({'alg': 'none', 'kid': KID})}.{b64url_json(CHECKPOINT)}."
    with pytest.raises(VerificationError):
        verify_jws_es256(token, jwks)


def public_key_secrets(key: ECKey) -> list[bytes]:
    public, encoding, form = key.public_key, serialization.Encoding, serialization.PublicFormat
    return [
        public.public_bytes(encoding.PEM, form.SubjectPublicKeyInfo),
        public.public_bytes(encoding.DER, form.SubjectPublicKeyInfo),
        public.public_bytes(encoding.X962, form.UncompressedPoint),
        json.dumps(key.as_dict(private=False)).encode(),
    ]


def test_jws_hmac_signed_with_the_public_key_as_secret_is_rejected(
    key: ECKey,
    jwks: dict[str, Any],
) -> None:
    for secret in public_key_secrets(key):
        signing_input = f"{b64url_json({'alg': 'HS256', 'kid': KID})}.{b64url_json(CHECKPOINT)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(VerificationError, match="alg"):
            verify_jws_es256(f"{signing_input}.{b64url(mac)}", jwks)


def test_jws_with_an_unknown_kid_is_rejected(key: ECKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(VerificationError, match="no key"):
        verify_jws_es256(joserfc_token(CHECKPOINT, key, kid="someone-else"), jwks)


def test_jws_without_a_kid_is_rejected(key: ECKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(VerificationError, match="kid"):
        verify_jws_es256(raw_es256_token({"alg": "ES256"}, CHECKPOINT, key), jwks)


def test_jws_carrying_its_own_key_in_the_header_is_not_trusted(other_key: ECKey, jwks: dict[str, Any]) -> None:
    embedded = other_key.as_dict(private=False)
    for header in (
        {"alg": "ES256", "kid": KID, "jwk": embedded},
        {"alg": "ES256", "kid": "attacker", "jwk": embedded},
        {"alg": "ES256", "kid": KID, "jku": "https://attacker.example/jwks.json"},
        {"alg": "ES256", "kid": KID, "x5u": "https://attacker.example/cert.pem"},
    ):
        with pytest.raises(VerificationError):
            verify_jws_es256(raw_es256_token(header, CHECKPOINT, other_key), jwks)


def test_jws_with_one_payload_byte_changed_is_rejected(key: ECKey, jwks: dict[str, Any]) -> None:
    header, payload, signature = joserfc_token(CHECKPOINT, key).split(".")
    raw = base64.urlsafe_b64decode(payload + "==")
    changed = raw.replace(b'"tree_size":40', b'"tree_size":41')
    assert changed != raw
    assert len(changed) == len(raw)
    with pytest.raises(VerificationError, match="does not verify"):
        verify_jws_es256(f"{header}.{b64url(changed)}.{signature}", jwks)


def test_jws_with_a_der_encoded_signature_is_rejected(key: ECKey, jwks: dict[str, Any]) -> None:
    signing_input = f"{b64url_json({'alg': 'ES256', 'kid': KID})}.{b64url_json(CHECKPOINT)}"
    der = private(key).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(VerificationError, match="64 bytes"):
        verify_jws_es256(f"{signing_input}.{b64url(der)}", jwks)


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!.e30.AA", "e30.e30.AA="])
def test_malformed_compact_jws_is_rejected(jwks: dict[str, Any], token: str) -> None:
    with pytest.raises(VerificationError):
        verify_jws_es256(token, jwks)


def test_jws_with_critical_extensions_is_rejected(key: ECKey, jwks: dict[str, Any]) -> None:
    header = {"alg": "ES256", "kid": KID, "crit": ["exp"], "exp": 1}
    with pytest.raises(VerificationError, match="extensions"):
        verify_jws_es256(raw_es256_token(header, CHECKPOINT, key), jwks)


@pytest.mark.parametrize(
    "payload",
    [
        {**CHECKPOINT, "extra": 1},
        {k: v for k, v in CHECKPOINT.items() if k != "timestamp"},
        {**CHECKPOINT, "tree_size": "40"},
        {**CHECKPOINT, "tree_size": True},
        {**CHECKPOINT, "tree_size": -1},
        {**CHECKPOINT, "tree_size": 40.0},
        {**CHECKPOINT, "root_hash": base64.b64encode(ROOT[:31]).decode()},
        {**CHECKPOINT, "root_hash": base64.urlsafe_b64encode(b"\xff" * 32).decode()},
        {**CHECKPOINT, "root_hash": base64.b64encode(ROOT).decode().rstrip("=")},
        {**CHECKPOINT, "root_hash": ROOT.hex()},
        {**CHECKPOINT, "timestamp": None},
    ],
    ids=[
        "extra-field",
        "missing-timestamp",
        "size-as-string",
        "size-as-bool",
        "negative-size",
        "size-as-float",
        "short-root",
        "urlsafe-root",
        "unpadded-root",
        "hex-root",
        "null-timestamp",
    ],
)
def test_checkpoint_jws_with_a_malformed_payload_is_rejected(
    key: ECKey, jwks: dict[str, Any], payload: dict[str, Any]
) -> None:
    with pytest.raises(VerificationError):
        verify_checkpoint_jws(joserfc_token(payload, key), jwks)


def test_checkpoint_jws_with_duplicate_members_is_rejected(
    key: ECKey,
    jwks: dict[str, Any],
) -> None:
    root = CHECKPOINT["root_hash"]
    body = f'{{"tree_size":1,"root_hash":"{root}","timestamp":1,"tree_size":2}}'
    token = jws.serialize_compact({"alg": "ES256", "kid": KID}, body.encode(), key)
    with pytest.raises(VerificationError, match="JSON"):
        verify_checkpoint_jws(token, jwks)


# --- C2SP signed notes ---

NAME = "tiers.example/log"


@pytest.fixture(scope="module")
def note_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_bytes(private: Ed25519PrivateKey) -> bytes:
    raw = serialization.Encoding.Raw
    return private.public_key().public_bytes(raw, serialization.PublicFormat.Raw)


def signature_line(
    text: str,
    name: str,
    private: Ed25519PrivateKey,
    key_id: bytes | None = None,
) -> str:
    key_id = key_id if key_id is not None else note_key_id(name, public_bytes(private))
    signature = private.sign(text.encode())
    return f"\u2014 {name} {base64.b64encode(key_id + signature).decode()}\n"


def checkpoint_text(size: int = 40, root: bytes = ROOT, origin: str = NAME) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def test_signed_checkpoint_note_round_trips(note_key: Ed25519PrivateKey) -> None:
    text = checkpoint_text()
    note = text + "\n" + signature_line(text, NAME, note_key)
    assert verify_note_ed25519(note, NAME, public_bytes(note_key)) == text
    assert parse_checkpoint_note(text) == (NAME, 40, ROOT)


def test_go_reference_note_and_verifier_key_are_accepted() -> None:
    # From golang.org/x/mod/sumdb/note's documentation and tests.
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    signature = "".join(
        [
            "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1",
            "FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        ]
    )
    note = f"{text}\n\u2014 PeterNeumann {signature}\n"
    name, public_key = parse_note_verifier_key(vkey)
    assert name == "PeterNeumann"
    assert note_verifier_key(name, public_key) == vkey
    assert verify_note_ed25519(note, name, public_key) == text
    with pytest.raises(VerificationError):
        verify_note_ed25519(note.replace("cryptography", "cryptographY"), name, public_key)


def test_signed_note_with_any_text_byte_changed_is_rejected(note_key: Ed25519PrivateKey) -> None:
    text = checkpoint_text()
    signature = signature_line(text, NAME, note_key)
    for position in range(len(text)):
        changed = text[:position] + chr(ord(text[position]) ^ 1) + text[position + 1 :]
        with pytest.raises(VerificationError):
            verify_note_ed25519(changed + "\n" + signature, NAME, public_bytes(note_key))


def test_signed_note_with_a_changed_signature_byte_is_rejected(note_key: Ed25519PrivateKey) -> None:
    text = checkpoint_text()
    raw = note_key_id(NAME, public_bytes(note_key)) + note_key.sign(text.encode())
    for position in (4, 20, 67):
        line = f"\u2014 {NAME} {base64.b64encode(flip(raw, position)).decode()}\n"
        with pytest.raises(VerificationError, match="does not verify"):
            verify_note_ed25519(text + "\n" + line, NAME, public_bytes(note_key))


def test_signed_note_signed_by_another_key_is_rejected(note_key: Ed25519PrivateKey) -> None:
    text, other = checkpoint_text(), Ed25519PrivateKey.generate()
    note = text + "\n" + signature_line(text, NAME, other)
    with pytest.raises(VerificationError, match="no signature"):
        verify_note_ed25519(note, NAME, public_bytes(note_key))
    # Claiming our key ID does not help a forger: the signature itself fails.
    forged_id = note_key_id(NAME, public_bytes(note_key))
    note = text + "\n" + signature_line(text, NAME, other, key_id=forged_id)
    with pytest.raises(VerificationError, match="does not verify"):
        verify_note_ed25519(note, NAME, public_bytes(note_key))


def test_signed_note_checked_under_another_name_is_rejected(note_key: Ed25519PrivateKey) -> None:
    text = checkpoint_text()
    note = text + "\n" + signature_line(text, NAME, note_key)
    with pytest.raises(VerificationError, match="no signature"):
        verify_note_ed25519(note, "tiers.example/other", public_bytes(note_key))


def test_signed_note_ignores_signatures_from_unknown_keys(note_key: Ed25519PrivateKey) -> None:
    text, witness = checkpoint_text(), Ed25519PrivateKey.generate()
    witness_line = signature_line(text, "witness.example", witness)
    note = text + "\n" + witness_line + signature_line(text, NAME, note_key)
    assert verify_note_ed25519(note, NAME, public_bytes(note_key)) == text


@pytest.mark.parametrize(
    "mangle",
    [
        lambda note: note.replace("\n\n", "\n"),
        lambda note: note[:-1],
        lambda note: note.replace("\u2014 ", "- "),
        lambda note: note.replace(f"\u2014 {NAME}", f"\u2014 {NAME}+x"),
        lambda note: note + "\n",
        lambda note: note.replace("40", "4\r0"),
    ],
    ids=[
        "no-blank-line",
        "no-final-newline",
        "hyphen-instead-of-em-dash",
        "bad-key-name",
        "blank-line-after-signatures",
        "control-character",
    ],
)
def test_malformed_signed_note_is_rejected(
    note_key: Ed25519PrivateKey,
    mangle: Callable[[str], str],
) -> None:
    text = checkpoint_text()
    note = text + "\n" + signature_line(text, NAME, note_key)
    with pytest.raises(VerificationError):
        verify_note_ed25519(mangle(note), NAME, public_bytes(note_key))


def test_checkpoint_note_may_carry_extension_lines() -> None:
    assert parse_checkpoint_note(checkpoint_text() + "extension\n") == (NAME, 40, ROOT)
    assert parse_checkpoint_note(checkpoint_text(size=0)) == (NAME, 0, ROOT)


@pytest.mark.parametrize(
    "text",
    [
        checkpoint_text()[:-1],
        f"{NAME}\n40\n",
        f"{NAME}\n040\n{base64.b64encode(ROOT).decode()}\n",
        f"{NAME}\n+40\n{base64.b64encode(ROOT).decode()}\n",
        f"{NAME}\n 40\n{base64.b64encode(ROOT).decode()}\n",
        f"{NAME}\n\uff14\uff10\n{base64.b64encode(ROOT).decode()}\n",
        f"{NAME}\n{2**64}\n{base64.b64encode(ROOT).decode()}\n",
        f"{NAME}\n40\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"\n40\n{base64.b64encode(ROOT).decode()}\n",
        checkpoint_text() + "\nextension\n",
    ],
    ids=[
        "no-final-newline",
        "no-root",
        "leading-zero",
        "plus-sign",
        "leading-space",
        "fullwidth-digits",
        "size-overflows-64-bits",
        "short-root",
        "empty-origin",
        "empty-extension-line",
    ],
)
def test_malformed_checkpoint_note_is_rejected(text: str) -> None:
    with pytest.raises(VerificationError):
        parse_checkpoint_note(text)


def test_note_verifier_key_round_trips(note_key: Ed25519PrivateKey) -> None:
    vkey = note_verifier_key(NAME, public_bytes(note_key))
    name, key_id, encoded = vkey.split("+", 2)
    assert (name, key_id) == (NAME, note_key_id(NAME, public_bytes(note_key)).hex())
    assert base64.b64decode(encoded) == b"\x01" + public_bytes(note_key)
    assert parse_note_verifier_key(vkey) == (NAME, public_bytes(note_key))


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann",
    ],
    ids=[
        "wrong-key-id",
        "wrong-name",
        "wrong-type",
        "truncated-key",
        "short-key-id",
        "empty-name",
        "no-key",
    ],
)
def test_malformed_note_verifier_key_is_rejected(vkey: str) -> None:
    with pytest.raises(ValueError, match=r"verifier key|key name"):
        parse_note_verifier_key(vkey)
