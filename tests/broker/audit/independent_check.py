"""Check a running Tiers' transparency log with other people's code only.

    python tests/broker/audit/independent_check.py http://127.0.0.1:8000

Nothing here imports Tiers. PyJWT verifies each checkpoint's JWS against the
published JWKS; `cryptography` verifies the Ed25519 signed note; pymerkle, an
independent RFC 9162 implementation, rebuilds the tree from the public entries'
canonical bytes, so every signed root is recomputed (which also proves each
checkpoint consistent with the ones before), and every inclusion proof the log
serves must be exactly the one pymerkle derives. Served consistency proofs are
checked against the RFC 9162 §2.1.4.2 algorithm written out below.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import urllib.request
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pymerkle import InmemoryTree


def get(base: str, path: str, accept: str = "application/json") -> Any:
    request = urllib.request.Request(base + path, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if accept == "application/json" else body.decode()


def all_pages(base: str, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url: str | None = base + path
    while url:
        page = get("", url)
        items.extend(page["results"])
        url = page["next"]
    return items


def verify_jws(compact: str, jwks: dict[str, Any]) -> dict[str, Any]:
    kid = jwt.get_unverified_header(compact)["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid and k["alg"] == "ES256")
    return json.loads(jwt.api_jws.decode_complete(compact, key.key, algorithms=["ES256"])["payload"])


def verify_note(note: str, vkey: str) -> list[str]:
    name, key_id_hex, key_b64 = vkey.split("+", 2)
    raw = base64.b64decode(key_b64)
    assert raw[0] == 1, "not an Ed25519 note key"
    text, _, signatures = note.partition("\n\n")
    text += "\n"
    for line in signatures.splitlines():
        signer, blob = line.removeprefix("\u2014 ").split(" ")
        signature = base64.b64decode(blob)
        if signer == name and signature[:4].hex() == key_id_hex:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(signature[4:], text.encode())
            return text.splitlines()
    raise AssertionError(f"no signature by {name}")


def consistent(m: int, n: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2, step by step."""

    def node(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()

    if m == n:
        return not proof and root1 == root2
    if m & (m - 1) == 0:
        proof = [root1, *proof]
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


def check(base: str) -> dict[str, int]:
    """Check everything the log at `base` serves; return what was checked."""
    jwks = get(base, "/oauth/jwks")
    info = get(base, "/api/v1/audit/")
    checkpoints = sorted(all_pages(base, "/api/v1/audit/checkpoints/"), key=lambda c: c["tree_size"])
    latest = get(base, "/api/v1/audit/checkpoints/latest")
    roots: dict[int, bytes] = {}
    for checkpoint in checkpoints:
        payload = verify_jws(checkpoint["jws"], jwks)
        assert payload == {k: checkpoint[k] for k in ("tree_size", "root_hash", "timestamp")}
        roots[checkpoint["tree_size"]] = base64.b64decode(payload["root_hash"])
    assert latest["tree_size"] == max(roots)
    note = verify_note(get(base, "/api/v1/audit/checkpoints/latest", "text/plain"), info["note_verifier_keys"][0])
    assert note[1:3] == [str(latest["tree_size"]), latest["root_hash"]]

    tree = InmemoryTree(algorithm="sha256")  # RFC 9162: 0x00 leaf and 0x01 node prefixes
    for entry in all_pages(base, "/api/v1/audit/entries/?page_size=200"):
        assert not entry["redacted"], "run the independent check on a log of public entries"
        canonical = base64.b64decode(entry["canonical"])
        assert hashlib.sha256(b"\x00" + canonical).digest() == base64.b64decode(entry["leaf_hash"])
        tree.append_entry(canonical)
    inclusion = consistency = 0
    for size, root in roots.items():
        if size == 0:
            assert root == hashlib.sha256(b"").digest()
            continue
        assert tree.get_root(size) == root, f"signed root at {size} differs from the entries"
        for index in range(size):
            served = get(base, f"/api/v1/audit/proofs/inclusion?leaf_index={index}&tree_size={size}")
            expected = tree.prove_inclusion(index + 1, size).path
            assert [base64.b64decode(h) for h in [served["leaf_hash"], *served["audit_path"]]] == expected
            inclusion += 1
    sizes = sorted(size for size in roots if size)
    for position, first in enumerate(sizes):
        for second in sizes[position:]:
            served = get(base, f"/api/v1/audit/proofs/consistency?first={first}&second={second}")
            path = [base64.b64decode(h) for h in served["consistency_path"]]
            assert consistent(first, second, roots[first], roots[second], path), (first, second)
            consistency += 1
    return {"checkpoints": len(checkpoints), "inclusion_proofs": inclusion, "consistency_proofs": consistency}


if __name__ == "__main__":
    print(json.dumps(check(sys.argv[1].rstrip("/"))))
