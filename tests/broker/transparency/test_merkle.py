"""Tests for the RFC 9162 Merkle tree storage and proof construction."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator, Mapping

import pytest

from broker.transparency import merkle
from broker.transparency.verify import verify_consistency, verify_inclusion

# --- a naive RFC 9162 implementation, written straight from section 2.1 ---


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """Largest power of two strictly smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) from RFC 9162 section 2.1.1."""
    if not leaves:
        return _sha256(b"")
    if len(leaves) == 1:
        return _sha256(b"\x00" + leaves[0])
    k = _k(len(leaves))
    return _sha256(b"\x01" + naive_root(leaves[:k]) + naive_root(leaves[k:]))


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 9162 section 2.1.3.1."""
    if len(leaves) == 1:
        return []
    k = _k(len(leaves))
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_root(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_root(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) from RFC 9162 section 2.1.4.1."""
    n = len(leaves)
    if m == n:
        return [] if b else [naive_root(leaves)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], b), naive_root(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_root(leaves[:k])]


def entries(count: int) -> list[bytes]:
    return [f"audit entry {i}".encode() for i in range(count)]


# --- an in-memory node table that hands out only the planned nodes ---


class Log:
    """Stand-in for the node table: every read goes through a plan, as in one SQL query."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0

    def fetch(self, plan: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {node: self.nodes[node] for node in plan}

    def append(self, batch: list[bytes]) -> list[tuple[int, int, bytes]]:
        fetched = self.fetch(merkle.append_plan(self.size, len(batch)))
        created = merkle.append_nodes(self.size, fetched, [merkle.leaf_hash(d) for d in batch])
        for level, index, value in created:
            assert (level, index) not in self.nodes, "a stored node was rewritten"
            self.nodes[(level, index)] = value
        self.size += len(batch)
        return created

    def root(self, size: int) -> bytes:
        return merkle.root_from(size, self.fetch(merkle.root_plan(size)))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(index, size, self.fetch(merkle.inclusion_plan(index, size)))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        plan = merkle.consistency_plan(first, second)
        return merkle.consistency_proof(first, second, self.fetch(plan))


def one_at_a_time(total: int) -> Iterator[int]:
    yield from [1] * total


def all_at_once(total: int) -> Iterator[int]:
    yield total


def varying(total: int) -> Iterator[int]:
    pattern, done, i = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8], 0, 0
    while done < total:
        step = min(pattern[i % len(pattern)], total - done)
        yield step
        done, i = done + step, i + 1


def randomised(total: int) -> Iterator[int]:
    rng, done = random.Random(total), 0
    while done < total:
        step = min(rng.randint(1, 17), total - done)
        yield step
        done += step


SCHEDULES: dict[str, Callable[[int], Iterator[int]]] = {
    "one-at-a-time": one_at_a_time,
    "all-at-once": all_at_once,
    "varying": varying,
    "random": randomised,
}


def build(data: list[bytes], schedule: Callable[[int], Iterator[int]]) -> Log:
    log = Log()
    for count in schedule(len(data)):
        log.append(data[log.size : log.size + count])
        assert log.root(log.size) == naive_root(data[: log.size])
    return log


# --- hashing ---

EMPTY_SHA256_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_leaf_and_node_hashes_use_rfc_9162_domain_separation() -> None:
    left, right = _sha256(b"l"), _sha256(b"r")
    assert merkle.leaf_hash(b"") == _sha256(b"\x00")
    assert merkle.leaf_hash(b"abc") == _sha256(b"\x00abc")
    assert merkle.node_hash(left, right) == _sha256(b"\x01" + left + right)
    assert merkle.EMPTY_ROOT.hex() == EMPTY_SHA256_HEX


def test_empty_tree_has_the_empty_string_hash_as_root() -> None:
    assert merkle.root_plan(0) == []
    assert merkle.root_from(0, {}) == merkle.EMPTY_ROOT
    assert merkle.append_plan(0, 5) == []


# --- building ---


@pytest.mark.parametrize("schedule", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_root_matches_naive_mth_for_every_size_up_to_70(
    schedule: Callable[[int], Iterator[int]],
) -> None:
    for total in range(1, 71):
        log = build(entries(total), schedule)
        assert log.size == total


def test_root_matches_naive_mth_for_a_few_hundred_sizes_up_to_300() -> None:
    rng = random.Random(9162)
    sizes = list(range(71, 301)) + rng.sample(range(1, 301), 70)
    for total in sizes:
        build(entries(total), rng.choice(list(SCHEDULES.values())))
    assert len(sizes) == 300


def test_log_stores_exactly_the_complete_subtrees() -> None:
    for total in range(1, 71):
        data = entries(total)
        log = build(data, randomised)
        expected = {(lv, i) for lv in range(total.bit_length()) for i in range(total >> lv)}
        assert set(log.nodes) == expected
        for (level, index), value in log.nodes.items():
            assert value == naive_root(data[index << level : (index + 1) << level])


def test_appending_nothing_creates_nothing() -> None:
    log = build(entries(13), varying)
    assert merkle.append_plan(13, 0) == []
    assert log.append([]) == []
    assert log.size == 13


def test_append_returns_leaves_first_then_parents_level_by_level() -> None:
    log = build(entries(5), one_at_a_time)
    created = log.append(entries(8)[5:])
    assert [(level, index) for level, index, _ in created] == [
        (0, 5),
        (0, 6),
        (0, 7),
        (1, 2),
        (1, 3),
        (2, 1),
        (3, 0),
    ]


# --- proofs ---


def test_inclusion_proof_matches_rfc_path_and_verifies_for_every_leaf() -> None:
    data = entries(70)
    log = build(data, varying)
    checked = 0
    # Complete nodes never change, so a 70-leaf log answers for every smaller tree too.
    for size in range(1, 71):
        root = naive_root(data[:size])
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            assert proof == naive_path(index, data[:size])
            verify_inclusion(merkle.leaf_hash(data[index]), index, size, proof, root)
            checked += 1
    assert checked == 70 * 71 // 2


def test_consistency_proof_matches_rfc_proof_and_verifies_for_every_pair() -> None:
    data = entries(40)
    log = build(data, randomised)
    roots = [naive_root(data[:size]) for size in range(41)]
    for second in range(1, 41):
        for first in range(1, second + 1):
            proof = log.consistency_proof(first, second)
            assert proof == naive_subproof(first, data[:second], True)
            verify_consistency(first, second, roots[first], roots[second], proof)


def test_consistency_proof_from_the_empty_tree_or_to_the_same_size_is_empty() -> None:
    log = build(entries(9), varying)
    for second in range(10):
        assert merkle.consistency_plan(0, second) == []
        assert log.consistency_proof(0, second) == []
        assert log.consistency_proof(second, second) == []


def test_proofs_need_only_a_logarithmic_number_of_nodes() -> None:
    rng = random.Random(6962)
    sizes = [*range(1, 260), 2**20, 2**20 + 1, 2**31 - 1, 10**12 + 12345, 2**62 + 3]
    for n in sizes:
        bound = 2 * math.ceil(math.log2(n)) + 2
        assert len(merkle.root_plan(n)) <= n.bit_length()
        assert len(merkle.append_plan(n, rng.randint(1, 64))) <= n.bit_length()
        for index in {0, n // 2, n - 1, rng.randrange(n)}:
            assert len(merkle.inclusion_plan(index, n)) <= bound
        for first in {1, n // 3 or 1, n - 1 or 1, n, rng.randint(1, n)}:
            assert len(merkle.consistency_plan(first, n)) <= bound


def test_append_work_grows_with_the_batch_not_the_tree() -> None:
    for size in (1000, 1023, 1024, 4097):
        log = build(entries(size), all_at_once)
        for count in (1, 2, 7, 64):
            plan = merkle.append_plan(log.size, count)
            assert len(plan) <= log.size.bit_length()
            created = log.append(entries(count))
            assert len(created) <= 2 * count + log.size.bit_length()


def test_proof_functions_fail_clearly_when_a_planned_node_was_not_fetched() -> None:
    log = build(entries(10), varying)
    plan = merkle.inclusion_plan(3, 10)
    partial: Mapping[tuple[int, int], bytes] = log.fetch(plan[:-1])
    with pytest.raises(ValueError, match="missing"):
        merkle.inclusion_proof(3, 10, partial)
    with pytest.raises(ValueError, match="missing"):
        merkle.append_nodes(10, {}, [merkle.leaf_hash(b"x")] * 6)


@pytest.mark.parametrize(
    "call",
    [
        lambda: merkle.inclusion_plan(5, 5),
        lambda: merkle.inclusion_plan(0, 0),
        lambda: merkle.inclusion_plan(-1, 3),
        lambda: merkle.inclusion_proof(7, 3, {}),
        lambda: merkle.consistency_plan(5, 4),
        lambda: merkle.consistency_plan(-1, 3),
        lambda: merkle.consistency_proof(2, 1, {}),
        lambda: merkle.root_plan(-1),
        lambda: merkle.root_from(-2, {}),
        lambda: merkle.append_plan(-1, 1),
        lambda: merkle.append_plan(3, -1),
        lambda: merkle.append_nodes(-1, {}, []),
        lambda: merkle.append_nodes(0, {}, [b"short"]),
    ],
    ids=[
        "index-equal-to-size",
        "empty-tree-inclusion",
        "negative-index",
        "index-beyond-size",
        "first-after-second",
        "negative-first",
        "proof-first-after-second",
        "negative-root-size",
        "negative-root-from-size",
        "negative-append-size",
        "negative-append-count",
        "negative-append-nodes-size",
        "short-leaf-hash",
    ],
)
def test_out_of_range_arguments_raise_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"must be|outside|larger than|bytes"):
        call()
