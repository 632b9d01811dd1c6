"""Citizens, their identity links with holders, their consents and the citizen portal."""
