"""The broker's public keys as a JWKS, for anyone who verifies what Tiers signed."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from broker import keys


@require_GET
def jwks_view(request: HttpRequest) -> JsonResponse:
    """Answer the JWKS of every signing key, active and retired."""
    response = JsonResponse(keys.jwks())
    # Short enough that verifiers see a rotated key within minutes; they refetch on an unknown kid.
    response["Cache-Control"] = "public, max-age=300"
    return response
