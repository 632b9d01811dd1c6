"""RFC 9162 Merkle tree hashing, incremental storage and proof construction.

Storage model: the log stores the hash of every *complete* aligned subtree. Node
``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``;
level 0 holds the leaf hashes. Complete nodes never change once written, so the
table is append-only. The hash of any subtree the RFC splits off, complete or
not, is a right-to-left fold of at most log2(n) stored nodes.

Each operation comes in two steps so that a caller reads the database once:
a ``*_plan`` function names the nodes it needs, the caller fetches them in one
query, then the matching function computes the result from that mapping.
Everything here is pure and uses only the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]
Node = tuple[int, int, bytes]
Nodes = Mapping[NodeId, bytes]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 hash of one leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# --- storage -----------------------------------------------------------------


def append_plan(size: int, count: int) -> list[NodeId]:
    """Name the stored nodes needed to append ``count`` leaves to a tree of ``size``."""
    _check_size(size)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    end = size + count
    # Right-edge subtrees are left children; one is read only if the append completes its parent.
    return [(level, index) for level, index in _range_plan(0, size) if (index + 2) << level <= end]


def append_nodes(size: int, existing: Nodes, new_leaf_hashes: Sequence[bytes]) -> list[Node]:
    """Return every node completed by appending these leaf hashes, leaves first."""
    _check_size(size)
    for position, value in enumerate(new_leaf_hashes):
        if len(value) != HASH_SIZE:
            raise ValueError(f"leaf hash {position} has {len(value)} bytes, want {HASH_SIZE}")
    end = size + len(new_leaf_hashes)
    created: list[Node] = [(0, size + i, value) for i, value in enumerate(new_leaf_hashes)]
    level, first, current = 0, size, list(new_leaf_hashes)
    # Invariant: current holds this level's new nodes, the first of them at index `first`.
    while (size >> (level + 1)) < (end >> (level + 1)):
        if first & 1:
            # Only the leftmost new node can have an old sibling: a right-edge subtree.
            current, first = [_get(existing, (level, first - 1)), *current], first - 1
        # Pair up left to right; an odd last node stays incomplete and is not stored.
        current = [node_hash(current[i], current[i + 1]) for i in range(0, len(current) - 1, 2)]
        level, first = level + 1, first >> 1
        created.extend((level, first + j, value) for j, value in enumerate(current))
    return created


# --- roots and proofs --------------------------------------------------------


def root_plan(size: int) -> list[NodeId]:
    """Name the complete subtrees, left to right, whose fold is the root of ``size`` leaves."""
    _check_size(size)
    return _range_plan(0, size)


def root_from(size: int, nodes: Nodes) -> bytes:
    """Return the root hash of the tree of ``size`` leaves from the planned nodes."""
    _check_size(size)
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, nodes)


def inclusion_plan(index: int, size: int) -> list[NodeId]:
    """Name the stored nodes needed for the inclusion proof of leaf ``index``."""
    _check_index(index, size)
    return _ranges_plan(_inclusion_ranges(index, size))


def inclusion_proof(index: int, size: int, nodes: Nodes) -> list[bytes]:
    """Return the RFC 9162 inclusion path of leaf ``index`` in the tree of ``size`` leaves."""
    _check_index(index, size)
    return [_range_hash(begin, end, nodes) for begin, end in _inclusion_ranges(index, size)]


def consistency_plan(first: int, second: int) -> list[NodeId]:
    """Name the stored nodes needed for the consistency proof from ``first`` to ``second``."""
    _check_sizes(first, second)
    return _ranges_plan(_consistency_ranges(first, second))


def consistency_proof(first: int, second: int, nodes: Nodes) -> list[bytes]:
    """Return the RFC 9162 consistency proof between trees of ``first`` and ``second`` leaves."""
    _check_sizes(first, second)
    return [_range_hash(begin, end, nodes) for begin, end in _consistency_ranges(first, second)]


# --- internals ---------------------------------------------------------------


def _check_size(size: int) -> None:
    """Reject a negative tree size."""
    if size < 0:
        raise ValueError(f"tree size must be >= 0, got {size}")


def _check_index(index: int, size: int) -> None:
    """Reject a leaf index outside a non-empty tree."""
    if size <= 0:
        raise ValueError(f"tree size must be > 0 for an inclusion proof, got {size}")
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside the tree of size {size}")


def _check_sizes(first: int, second: int) -> None:
    """Reject a consistency request that goes backwards or starts below zero."""
    if first < 0:
        raise ValueError(f"first tree size must be >= 0, got {first}")
    if first > second:
        raise ValueError(f"first tree size {first} is larger than second tree size {second}")


def _split(width: int) -> int:
    """Return the largest power of two strictly below ``width`` (``width`` >= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def _range_plan(begin: int, end: int) -> list[NodeId]:
    """Name the complete subtrees, left to right, that make up leaves ``[begin, end)``."""
    # Only valid for ranges the RFC split produces: begin is aligned to a power of two no
    # smaller than the width, so the subtree has the shape of a tree of that many leaves.
    nodes: list[NodeId] = []
    width, start = end - begin, begin
    for level in reversed(range(width.bit_length())):
        if width >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def _range_hash(begin: int, end: int, nodes: Nodes) -> bytes:
    """Return MTH(D[begin:end]) by folding its complete subtrees right to left."""
    plan = _range_plan(begin, end)
    result = _get(nodes, plan[-1])
    for node in reversed(plan[:-1]):
        result = node_hash(_get(nodes, node), result)
    return result


def _ranges_plan(ranges: list[tuple[int, int]]) -> list[NodeId]:
    """Name every stored node behind a list of subtree ranges."""
    return [node for begin, end in ranges for node in _range_plan(begin, end)]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose hashes form PATH(index, D[0:size]), bottom up."""
    ranges: list[tuple[int, int]] = []
    begin, end = 0, size
    while end - begin > 1:
        mid = begin + _split(end - begin)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            begin = mid
    # The walk goes root to leaf; the RFC lists the leaf's sibling first.
    ranges.reverse()
    return ranges


def _consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose hashes form PROOF(first, D[0:second]), bottom up."""
    if first in (0, second):
        return []
    ranges: list[tuple[int, int]] = []
    begin, end = 0, second
    # whole_old_tree is SUBPROOF's flag b: still on the path whose root the verifier knows.
    whole_old_tree = True
    while first != end:
        mid = begin + _split(end - begin)
        if first <= mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((begin, mid))
            begin = mid
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((begin, end))
    # The walk goes top down; SUBPROOF emits the deepest hash first.
    ranges.reverse()
    return ranges


def _get(nodes: Nodes, node: NodeId) -> bytes:
    """Return a fetched node hash, or fail clearly if the caller did not fetch it."""
    try:
        value = nodes[node]
    except KeyError:
        raise ValueError(f"node {node} (level, index) is missing from the fetched nodes") from None
    if len(value) != HASH_SIZE:
        raise ValueError(f"node {node} has {len(value)} bytes, want {HASH_SIZE}")
    return value
