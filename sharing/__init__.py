"""Data-altruism agreements, datasets, access requests, grants and consent-aware delivery."""
