"""Run the transparency-dev/merkle reference vectors against the verifier and the prover."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from broker.transparency import merkle
from broker.transparency.verify import VerificationError, verify_consistency, verify_inclusion

VECTORS = Path(__file__).parent / "vectors" / "merkle"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))

# The leaves behind the reference vectors' happy paths (the RFC 6962 test tree).
REFERENCE_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]


def _id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _hash(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(value: list[str] | None) -> list[bytes]:
    # The Go encoder writes an empty proof as null.
    return [_hash(item) for item in value or []]


def _reference_nodes() -> dict[tuple[int, int], bytes]:
    hashes = [merkle.leaf_hash(leaf) for leaf in REFERENCE_LEAVES]
    return {(level, index): value for level, index, value in merkle.append_nodes(0, {}, hashes)}


def test_every_vector_file_is_collected() -> None:
    every_file = sorted(VECTORS.rglob("*.json"))
    assert sorted(INCLUSION + CONSISTENCY) == every_file
    # 98 + 98 files upstream; a broken copy or glob must not pass silently.
    assert len(INCLUSION) >= 90
    assert len(CONSISTENCY) >= 90
    assert sum(_load(path)["wantErr"] is False for path in every_file) >= 10


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector_is_judged_as_the_reference_does(path: Path) -> None:
    case = _load(path)

    def run() -> None:
        verify_inclusion(
            _hash(case["leafHash"]),
            case["leafIdx"],
            case["treeSize"],
            _proof(case["proof"]),
            _hash(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(VerificationError):
            run()
    else:
        run()


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector_is_judged_as_the_reference_does(path: Path) -> None:
    case = _load(path)

    def run() -> None:
        verify_consistency(
            case["size1"],
            case["size2"],
            _hash(case["root1"]),
            _hash(case["root2"]),
            _proof(case["proof"]),
        )

    if case["wantErr"]:
        with pytest.raises(VerificationError):
            run()
    else:
        run()


@pytest.mark.parametrize("path", [p for p in INCLUSION if p.name == "happy-path.json"], ids=_id)
def test_prover_reproduces_the_reference_inclusion_proofs(path: Path) -> None:
    case, nodes = _load(path), _reference_nodes()
    index, size = case["leafIdx"], case["treeSize"]
    assert merkle.leaf_hash(REFERENCE_LEAVES[index]) == _hash(case["leafHash"])
    assert merkle.root_from(size, nodes) == _hash(case["root"])
    assert merkle.inclusion_proof(index, size, nodes) == _proof(case["proof"])


@pytest.mark.parametrize("path", [p for p in CONSISTENCY if p.name == "happy-path.json"], ids=_id)
def test_prover_reproduces_the_reference_consistency_proofs(path: Path) -> None:
    case, nodes = _load(path), _reference_nodes()
    first, second = case["size1"], case["size2"]
    assert merkle.root_from(first, nodes) == _hash(case["root1"])
    assert merkle.root_from(second, nodes) == _hash(case["root2"])
    assert merkle.consistency_proof(first, second, nodes) == _proof(case["proof"])
