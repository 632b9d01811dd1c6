"""Verify Tiers' transparency log without trusting Tiers.

This file is self-contained: it needs only the Python standard library and the
``cryptography`` package, so an auditor can copy it out of the repository and
run it anywhere. Every ``verify_*`` function returns normally when the evidence
holds and raises ``VerificationError`` when it does not.

Typical use, with the broker's published JWKS and the proofs its API serves::

    checkpoint = verify_checkpoint_jws(checkpoint_jws, jwks)
    verify_inclusion(leaf_hash(entry_bytes), index, checkpoint.tree_size, proof,
                     checkpoint.root_hash)
    verify_consistency(old.tree_size, checkpoint.tree_size, old.root_hash,
                       checkpoint.root_hash, consistency_proof)

Checkpoints published as C2SP signed notes (c2sp.org/tlog-checkpoint) are
checked with ``verify_note_ed25519`` and read with ``parse_checkpoint_note``;
``parse_note_verifier_key`` reads the ``<name>+<key id>+<key>`` verifier key.
Hashes in proofs are raw 32-byte SHA-256 values (RFC 9162).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

HASH_SIZE = 32

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_B64STD = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_NOTE_SIGNATURE_PREFIX = "\u2014 "
_NOTE_ED25519 = b"\x01"
# The signed-note spec asks verifiers to cap signatures and accept at least 16.
_NOTE_MAX_SIGNATURES = 100
_CHECKPOINT_FIELDS = frozenset({"tree_size", "root_hash", "timestamp"})


class VerificationError(Exception):
    """The evidence does not prove what it claims."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the log held ``tree_size`` entries with ``root_hash``."""

    tree_size: int
    root_hash: bytes
    timestamp: int | str


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 hash of one log entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- Merkle proofs (RFC 9162 section 2.1) ------------------------------------


def verify_inclusion(
    leaf_hash: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    root: bytes,
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``."""
    if size <= 0 or not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is outside the tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root hash", root)
    _check_proof(proof)
    inner = (index ^ (size - 1)).bit_length()
    expected = inner + (index >> inner).bit_count()
    if len(proof) != expected:
        raise VerificationError(f"inclusion proof has {len(proof)} hashes, want {expected}")
    # RFC 9162 section 2.1.3.2, step by step.
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = _node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("inclusion proof is too short")
    if not hmac.compare_digest(r, root):
        raise VerificationError("inclusion proof does not lead to the root hash")


def verify_consistency(
    size1: int,
    size2: int,
    root1: bytes,
    root2: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the one of ``size1``."""
    if size1 < 0 or size2 < 0:
        raise VerificationError(f"tree sizes must be >= 0, got {size1} and {size2}")
    if size1 > size2:
        raise VerificationError(f"first tree size {size1} is larger than second {size2}")
    if size1 == 0:
        # Every tree extends the empty tree, so such a "proof" shows nothing; the reference
        # vectors require rejecting it rather than reporting success.
        raise VerificationError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise VerificationError("trees of equal size need an empty consistency proof")
        if not hmac.compare_digest(root1, root2):
            raise VerificationError("trees of equal size have different root hashes")
        return
    _check_hash("first root hash", root1)
    _check_hash("second root hash", root2)
    _check_proof(proof)
    expected = _consistency_proof_length(size1, size2)
    if len(proof) != expected:
        raise VerificationError(f"consistency proof has {len(proof)} hashes, want {expected}")
    _run_consistency(size1, size2, root1, root2, proof)


def _run_consistency(
    size1: int,
    size2: int,
    root1: bytes,
    root2: bytes,
    proof: Sequence[bytes],
) -> None:
    """Apply RFC 9162 section 2.1.4.2 to a proof of the right length."""
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = _node_hash(c, fr), _node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    if not hmac.compare_digest(fr, root1):
        raise VerificationError("consistency proof does not lead to the first root hash")
    if not hmac.compare_digest(sr, root2):
        raise VerificationError("consistency proof does not lead to the second root hash")


def _consistency_proof_length(size1: int, size2: int) -> int:
    """Return the length of a correct proof for 0 < size1 < size2."""
    last = size1 - 1
    inner = (last ^ (size2 - 1)).bit_length()
    border = (last >> inner).bit_count()
    shift = (size1 & -size1).bit_length() - 1
    # The first hash is omitted when size1 is itself a complete subtree: root1 stands in.
    seed = 0 if size1 == 1 << shift else 1
    return seed + inner - shift + border


def _check_hash(what: str, value: bytes) -> None:
    """Reject a hash that is not 32 bytes."""
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise VerificationError(f"{what} must be {HASH_SIZE} bytes")


def _check_proof(proof: Sequence[bytes]) -> None:
    """Reject a proof containing anything but 32-byte hashes."""
    for position, value in enumerate(proof):
        _check_hash(f"proof hash {position}", value)


# --- JWS checkpoints (RFC 7515, ES256 per RFC 7518) ---------------------------


def verify_jws_es256(compact: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """Verify a compact ES256 JWS against a JWKS and return its JSON payload."""
    parts = compact.split(".") if isinstance(compact, str) else []
    if len(parts) != 3:
        raise VerificationError("a compact JWS has exactly three dot-separated parts")
    header_b64, payload_b64, signature_b64 = parts
    header = _json_object(_b64url_decode(header_b64, "JWS header"), "JWS header")
    alg = header.get("alg")
    # Pinning the algorithm blocks alg=none and HMAC-with-public-key confusion.
    if not isinstance(alg, str) or alg != "ES256":
        raise VerificationError(f"JWS alg must be ES256, got {alg!r}")
    if "crit" in header or header.get("b64", True) is not True:
        raise VerificationError("JWS uses extensions this verifier does not understand")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise VerificationError("JWS header has no kid")
    # Keys named inside the token (jwk, jku, x5u, x5c) are ignored: trust comes from the JWKS.
    key = _jwks_key(jwks, kid)
    signature = _b64url_decode(signature_b64, "JWS signature")
    if len(signature) != 64:
        raise VerificationError("ES256 signature must be 64 bytes (r || s)")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    der = encode_dss_signature(r, s)
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    try:
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationError("JWS signature does not verify") from None
    return _json_object(_b64url_decode(payload_b64, "JWS payload"), "JWS payload")


def verify_checkpoint_jws(compact: str, jwks: Mapping[str, Any]) -> Checkpoint:
    """Verify a checkpoint JWS and return its tree size, root hash and timestamp."""
    payload = verify_jws_es256(compact, jwks)
    if set(payload) != _CHECKPOINT_FIELDS:
        raise VerificationError(f"checkpoint must have exactly {sorted(_CHECKPOINT_FIELDS)}, got {sorted(payload)}")
    tree_size, root_b64 = payload["tree_size"], payload["root_hash"]
    if not _is_unsigned(tree_size):
        raise VerificationError("checkpoint tree_size must be a non-negative integer")
    if not isinstance(root_b64, str):
        raise VerificationError("checkpoint root_hash must be a base64 string")
    root_hash = _b64std_decode(root_b64, "checkpoint root_hash")
    _check_hash("checkpoint root_hash", root_hash)
    timestamp = payload["timestamp"]
    # Accept Unix seconds or an RFC 3339 string; the verifier does not interpret the time.
    if not (_is_unsigned(timestamp) or (isinstance(timestamp, str) and timestamp)):
        raise VerificationError("checkpoint timestamp must be an integer or a non-empty string")
    return Checkpoint(tree_size=tree_size, root_hash=root_hash, timestamp=timestamp)


def _is_unsigned(value: object) -> bool:
    """Tell whether a JSON value is a non-negative integer (and not a boolean)."""
    return type(value) is int and value >= 0


def _jwks_key(jwks: Mapping[str, Any], kid: str) -> ec.EllipticCurvePublicKey:
    """Return the one P-256 key in the JWKS with this kid."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise VerificationError('JWKS must be an object with a "keys" array')
    matches = [jwk for jwk in keys if isinstance(jwk, Mapping) and jwk.get("kid") == kid]
    if not matches:
        raise VerificationError(f"no key with kid {kid!r} in the JWKS")
    if len(matches) > 1:
        raise VerificationError(f"several keys share kid {kid!r} in the JWKS")
    jwk = matches[0]
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise VerificationError(f"key {kid!r} is not an EC P-256 key")
    if jwk.get("alg", "ES256") != "ES256" or jwk.get("use", "sig") != "sig":
        raise VerificationError(f"key {kid!r} is not meant for ES256 signatures")
    x, y = jwk.get("x"), jwk.get("y")
    if not isinstance(x, str) or not isinstance(y, str):
        raise VerificationError(f"key {kid!r} lacks x or y")
    x_bytes, y_bytes = _b64url_decode(x, "JWK x"), _b64url_decode(y, "JWK y")
    if len(x_bytes) != 32 or len(y_bytes) != 32:
        raise VerificationError(f"key {kid!r} coordinates must be 32 bytes")
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x_bytes, "big"), int.from_bytes(y_bytes, "big"), ec.SECP256R1()
    )
    try:
        return numbers.public_key()
    except ValueError:
        raise VerificationError(f"key {kid!r} is not a point on P-256") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse strict JSON that must be an object without duplicate names."""
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_unique_object,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise VerificationError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise VerificationError(f"{what} must be a JSON object")
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, refusing duplicate names that parsers resolve differently."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member name")
    return result


def _reject_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def _b64url_decode(value: str, what: str) -> bytes:
    """Decode unpadded, canonical base64url as JOSE requires."""
    if not _B64URL.fullmatch(value):
        raise VerificationError(f"{what} is not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not valid base64url") from None
    # Non-zero padding bits would let one value have several encodings.
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != value:
        raise VerificationError(f"{what} is not canonical base64url")
    return raw


def _b64std_decode(value: str, what: str) -> bytes:
    """Decode padded, canonical standard base64 (RFC 4648 section 4)."""
    if not _B64STD.fullmatch(value):
        raise VerificationError(f"{what} is not standard base64")
    raw = base64.b64decode(value, validate=True)
    if base64.b64encode(raw).decode("ascii") != value:
        raise VerificationError(f"{what} is not canonical base64")
    return raw


# --- C2SP signed notes and checkpoints -----------------------------------------


def note_key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key ID of an Ed25519 key."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _NOTE_ED25519 + public_key).digest()[:4]


def note_verifier_key(name: str, public_key: bytes) -> str:
    """Return the ``<name>+<hex key id>+<base64(0x01 || key)>`` verifier key string."""
    _check_note_key(name, public_key)
    encoded = base64.b64encode(_NOTE_ED25519 + public_key).decode("ascii")
    return f"{name}+{note_key_id(name, public_key).hex()}+{encoded}"


def parse_note_verifier_key(vkey: str) -> tuple[str, bytes]:
    """Return the name and Ed25519 public key from a verifier key string."""
    name, _, rest = vkey.partition("+")
    key_id_hex, _, key_b64 = rest.partition("+")
    if not re.fullmatch(r"[0-9a-f]{8}", key_id_hex):
        raise ValueError("verifier key must be <name>+<8 hex digits>+<base64 key>")
    try:
        key = _b64std_decode(key_b64, "verifier key")
    except VerificationError as exc:
        raise ValueError(str(exc)) from None
    if len(key) != 33 or key[:1] != _NOTE_ED25519:
        raise ValueError("verifier key is not an Ed25519 (type 0x01) key")
    _check_note_key(name, key[1:])
    if note_key_id(name, key[1:]).hex() != key_id_hex:
        raise ValueError("verifier key ID does not match its name and key")
    return name, key[1:]


def verify_note_ed25519(note: str, name: str, public_key: bytes) -> str:
    """Verify a signed note against one Ed25519 key and return its signed text."""
    _check_note_key(name, public_key)
    text, signatures = _split_note(note)
    key_id = note_key_id(name, public_key)
    key = Ed25519PublicKey.from_public_bytes(public_key)
    verified = False
    for signer, signer_id, signature in signatures:
        # The spec requires ignoring signatures unless both name and key ID match.
        if signer != name or signer_id != key_id:
            continue
        try:
            key.verify(signature, text.encode("utf-8"))
        except InvalidSignature:
            raise VerificationError(f"the signature by {name} does not verify") from None
        verified = True
    if not verified:
        raise VerificationError(f"the note has no signature by {name} ({key_id.hex()})")
    return text


def parse_checkpoint_note(text: str) -> tuple[str, int, bytes]:
    """Return origin, tree size and root hash from verified checkpoint note text."""
    if not text.endswith("\n"):
        raise VerificationError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise VerificationError("checkpoint text needs at least three non-empty lines")
    origin, size_line, root_line = lines[:3]
    if not _DECIMAL.fullmatch(size_line) or len(size_line) > 20:
        raise VerificationError("checkpoint tree size is not a canonical decimal number")
    tree_size = int(size_line)
    if tree_size >= 1 << 64:
        raise VerificationError("checkpoint tree size does not fit in 64 bits")
    root_hash = _b64std_decode(root_line, "checkpoint root hash")
    _check_hash("checkpoint root hash", root_hash)
    return origin, tree_size, root_hash


def _check_note_key(name: str, public_key: bytes) -> None:
    """Reject a key name or Ed25519 key the signed-note spec does not allow."""
    if not _is_note_key_name(name):
        raise ValueError(f"invalid note key name {name!r}: empty, or has a space or '+'")
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")


def _is_note_key_name(name: str) -> bool:
    """Tell whether a signed-note key name is non-empty with no spaces or '+'."""
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its text and its (name, key ID, signature) lines."""
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise VerificationError("note is not valid UTF-8") from None
    if any(ch < " " and ch != "\n" for ch in note):
        raise VerificationError("note contains control characters")
    # The text ends at the last blank line; its final newline is signed, the blank line is not.
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise VerificationError("note has no blank line followed by signature lines")
    text, block = note[: split + 1], note[split + 2 : -1]
    lines = block.split("\n")
    if len(lines) > _NOTE_MAX_SIGNATURES:
        raise VerificationError("note has too many signatures")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> tuple[str, bytes, bytes]:
    """Parse one ``— <name> <base64(key id || signature)>`` line."""
    if not line.startswith(_NOTE_SIGNATURE_PREFIX):
        raise VerificationError("malformed note signature line")
    name, _, encoded = line[len(_NOTE_SIGNATURE_PREFIX) :].partition(" ")
    if not _is_note_key_name(name):
        raise VerificationError("malformed note signature line: bad key name")
    raw = _b64std_decode(encoded, "note signature")
    if len(raw) < 5:
        raise VerificationError("note signature is too short")
    return name, raw[:4], raw[4:]
