"""Security headers on every response, static files and errors included: CSP, framing, sniffing, referrer, COOP.

Django 5.2 has no Content-Security-Policy of its own. The policy allows no inline script anywhere;
two pages carry a fixed inline <style> block from a template (drf-spectacular's Swagger UI, the
reports' HTML): those pages alone also allow that block, by its SHA-256 hash, never 'unsafe-inline'.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import get_template

_STYLE_BLOCK = re.compile(r"<style>(.*?)</style>", re.DOTALL)
# url name → the template whose inline <style> block that page may use.
INLINE_STYLE_TEMPLATES = {
    "api-docs": "drf_spectacular/swagger_ui.html",
    "report-annual": "reports/_style.html",
    "register-dossier": "reports/_style.html",
}


@functools.cache
def style_hash(template_name: str) -> str:
    """The CSP source ('sha256-…') of a template's inline <style> block, as the browser hashes it."""
    source = get_template(template_name).template.source  # type: ignore[attr-defined]
    match = _STYLE_BLOCK.search(source)
    if match is None:
        raise ValueError(f"{template_name} has no <style> block")
    digest = base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode()
    return f"'sha256-{digest}'"


def policy_for(request: HttpRequest) -> str:
    """The page's CSP: the strict policy, with one style hash on the pages listed above."""
    policy: str = settings.TIERS_CONTENT_SECURITY_POLICY
    match = getattr(request, "resolver_match", None)
    template = INLINE_STYLE_TEMPLATES.get(match.url_name or "") if match else None
    if template is None:
        return policy
    return policy.replace("style-src 'self'", f"style-src 'self' {style_hash(template)}", 1)


class SecurityHeadersMiddleware:
    """Sets what SecurityMiddleware and XFrameOptionsMiddleware do not (CSP), and re-asserts the rest.

    Placed before WhiteNoise, so that static files get the headers too; a view may set its own.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", policy_for(request))
        response.headers.setdefault("X-Frame-Options", settings.X_FRAME_OPTIONS)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY)
        response.headers.setdefault("Permissions-Policy", settings.TIERS_PERMISSIONS_POLICY)
        return response
