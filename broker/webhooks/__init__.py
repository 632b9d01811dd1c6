"""Signed webhooks: Security Event Tokens (RFC 8417) told to organisations, retried until delivered or dead."""
