"""Hardening shared by every request: the second factor, security headers, attempt limits, idempotent creation.

See docs/security.md for the threat model and where each control lives.
"""
