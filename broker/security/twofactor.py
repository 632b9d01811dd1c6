"""The "half logged in" state between the password and the second factor, and the middleware that enforces it.

The login form (broker.views.LoginView) marks the session of a person who must use a second factor
as pending. Until the code is checked at /accounts/2fa/, every page but the second-factor pages and
logout redirects there, and the API refuses the session with a 403 problem: the session proves a
password, not an identity. Checking the code rotates the session key and sets `tiers_2fa_verified`,
which the operators' workspace also reads (broker/workspace/decorators.py).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from broker.problems import problem_response

VERIFIED_SESSION_KEY = "tiers_2fa_verified"
PENDING_SESSION_KEY = "tiers_2fa_pending"
# Reached without a session, or the way out of one: never redirected.
_EXEMPT_PREFIXES = (
    "/accounts/2fa/",
    "/accounts/logout/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/oauth/",
    "/.well-known/",
)


def begin(request: HttpRequest) -> None:
    """After the password: the session waits for the second factor."""
    request.session.pop(VERIFIED_SESSION_KEY, None)
    request.session[PENDING_SESSION_KEY] = True


def complete(request: HttpRequest) -> None:
    """After the code: a new session key (what a password-only thief saw is worthless), fully logged in."""
    request.session.cycle_key()
    request.session.pop(PENDING_SESSION_KEY, None)
    request.session[VERIFIED_SESSION_KEY] = True


def is_pending(request: HttpRequest) -> bool:
    session = getattr(request, "session", None)
    return bool(session is not None and session.get(PENDING_SESSION_KEY) and request.user.is_authenticated)


def is_verified(request: HttpRequest) -> bool:
    session = getattr(request, "session", None)
    return bool(session is not None and session.get(VERIFIED_SESSION_KEY))


class SecondFactorMiddleware:
    """Holds a half-logged-in session at the second-factor page; after AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.exempt = (*_EXEMPT_PREFIXES, "/" + settings.STATIC_URL.lstrip("/"))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_pending(request) or request.path.startswith(self.exempt):
            return self.get_response(request)
        if request.path.startswith("/api/"):
            if request.headers.get("Authorization"):
                # An OAuth caller sharing the browser: its token decides, the session counts for nothing.
                request.user = AnonymousUser()
                return self.get_response(request)
            return problem_response(
                403,
                title="Second factor required.",
                detail="This session has passed the password only: complete the second factor at /accounts/2fa/.",
                slug="second-factor-required",
            )
        target = request.get_full_path() if request.method == "GET" else ""
        query = f"?{urlencode({'next': target})}" if target else ""
        return redirect(f"{reverse('two-factor')}{query}")
