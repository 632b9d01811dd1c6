"""Transparency log: RFC 9162 Merkle trees, proofs and an offline verifier."""
