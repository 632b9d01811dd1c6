"""The OAuth 2.0 authorization server for organisations' software (client credentials only)."""
