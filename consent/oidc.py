"""Login with an OpenID Connect provider (FranceConnect, an eIDAS node, Keycloak...) from TIERS_OIDC_PROVIDERS.

Authorization code flow with PKCE (S256), state and nonce, through authlib's Django client. The ID token is
checked against the provider's JWKS, its issuer, our client id as audience, its expiry and the nonce kept in
the session. A first login opens a citizen's account, linked to the provider's `sub` by an OidcIdentity.

A login again to confirm an erasure (consent.accounts) asks the provider to authenticate anew (`prompt=login`,
`max_age=0`) and is counted only if the ID token's `auth_time` shows it did, after the request started.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from joserfc.errors import JoseError

from broker.errors import Conflict
from consent import accounts, services

log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10
NEXT_SESSION_KEY = "oidc_next"
# A login again to confirm an erasure: its state and when it started (a Unix time).
RELOGIN_SESSION_KEY = "oidc_relogin"
RELOGIN_FIELD = "relogin"
# auth_time must be no older than this at the callback, and no earlier than the request (give or take the skew).
RELOGIN_MAX_AGE_SECONDS = 5 * 60
CLOCK_SKEW_SECONDS = 30

_registry: tuple[str, OAuth] | None = None


def providers() -> list[dict[str, Any]]:
    """The configured providers, for the login page's buttons."""
    return list(settings.TIERS_OIDC_PROVIDERS)


def _oauth() -> OAuth:
    """authlib's registry of the configured providers, rebuilt when the configuration changes (tests)."""
    global _registry
    fingerprint = json.dumps(settings.TIERS_OIDC_PROVIDERS, sort_keys=True)
    if _registry is None or _registry[0] != fingerprint:
        oauth = OAuth()
        for provider in settings.TIERS_OIDC_PROVIDERS:
            oauth.register(
                name=provider["name"],
                server_metadata_url=provider["server_metadata_url"],
                client_id=provider["client_id"],
                client_secret=provider["client_secret"] or None,
                authorize_params=provider["authorize_params"] or None,
                client_kwargs={
                    "scope": provider["scope"],
                    "code_challenge_method": "S256",
                    "token_endpoint_auth_method": None if provider["client_secret"] else "none",
                    "default_timeout": HTTP_TIMEOUT_SECONDS,
                },
            )
        _registry = (fingerprint, oauth)
    return _registry[1]


def _provider(name: str) -> tuple[dict[str, Any], DjangoOAuth2App]:
    """The provider's settings and authlib client; 404 for a name that is not configured."""
    for provider in settings.TIERS_OIDC_PROVIDERS:
        if provider["name"] == name:
            return provider, _oauth().create_client(name)
    raise Http404("No such login provider.")


class LoginFailed(Exception):
    """The provider's answer does not log anyone in; the message is for the citizen."""


def _issuer(provider: dict[str, Any], client: DjangoOAuth2App) -> str:
    """The provider's issuer, which must be the address its discovery document was read from (mix-up defence)."""
    issuer = str(client.load_server_metadata().get("issuer") or "")
    if not issuer or provider["server_metadata_url"] != issuer.rstrip("/") + "/.well-known/openid-configuration":
        log.error("OIDC provider %s: issuer %r does not match its discovery address", provider["name"], issuer)
        raise LoginFailed(_("%(label)s is not configured correctly. Please use another way to log in.") % provider)
    return issuer


@require_POST
def oidc_login(request: HttpRequest, name: str) -> HttpResponse:
    """Send the citizen to the provider to log in, with state, nonce and a PKCE challenge kept in the session."""
    provider, client = _provider(name)
    relogin = request.POST.get(RELOGIN_FIELD) == "1"
    state, started_at = secrets.token_urlsafe(24), time.time()
    # OpenID Connect Core 3.1.2.1: the provider must authenticate the citizen now, even with a session open there.
    params = {"prompt": "login", "max_age": "0"} if relogin else {}
    try:
        _issuer(provider, client)
        response: HttpResponse = client.authorize_redirect(
            request, f"{settings.TIERS_BASE_URL}{reverse('oidc-callback', args=[name])}", state=state, **params
        )
    except LoginFailed as exc:
        messages.error(request, str(exc))
        return redirect("login")
    except (requests.RequestException, ValueError, AuthlibBaseError) as exc:
        log.warning("OIDC provider %s unreachable at login: %s", name, exc)
        messages.error(request, _("%(label)s cannot be reached. Please try again in a moment.") % provider)
        return redirect("login")
    next_url = request.POST.get("next", "")
    if next_url:
        request.session[NEXT_SESSION_KEY] = next_url
    if relogin:
        request.session[RELOGIN_SESSION_KEY] = {"state": state, "started_at": started_at}
    return response


@require_GET
def oidc_callback(request: HttpRequest, name: str) -> HttpResponse:
    """The provider sends the citizen back: check its answer, find or open their account, log them in."""
    provider, client = _provider(name)
    next_url = request.session.pop(NEXT_SESSION_KEY, "")
    relogin = request.session.get(RELOGIN_SESSION_KEY)
    if isinstance(relogin, dict) and relogin.get("state") == request.GET.get("state"):
        del request.session[RELOGIN_SESSION_KEY]
    else:
        relogin = None
    try:
        claims = _verified_claims(request, provider, client)
        auth_time = _fresh_auth_time(provider, claims, relogin["started_at"]) if relogin else None
        user = services.oidc_identity_resolve(provider=name, claims=claims, language=(get_language() or "en")[:2])
    except LoginFailed as exc:
        messages.error(request, str(exc))
        return redirect("citizen-erasure" if relogin else "login")
    except Conflict:
        log.error("OIDC provider %s: the username for a new subject is taken", name)
        messages.error(request, _("Tiers could not open your account. Please contact us."))
        return redirect("login")
    if not user.is_active:
        messages.error(request, _("This account is disabled."))
        return redirect("login")
    auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if auth_time is not None:
        # When: an account without a password confirms an erasure by a login this recent (consent.accounts).
        request.session[accounts.PROVIDER_LOGIN_SESSION_KEY] = auth_time
    safe = url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return HttpResponseRedirect(next_url if next_url and safe else reverse(settings.LOGIN_REDIRECT_URL))


def _verified_claims(request: HttpRequest, provider: dict[str, Any], client: DjangoOAuth2App) -> dict[str, Any]:
    """Exchange the code and check the ID token; any failure becomes a LoginFailed with a helpful message."""
    label = {"label": provider["label"]}
    if request.GET.get("error"):
        # The description comes from the query string: logged, never shown (no injected text on our page).
        log.info(
            "OIDC provider %s answered %s: %s",
            provider["name"],
            request.GET["error"],
            request.GET.get("error_description"),
        )
        if request.GET["error"] == "access_denied":
            raise LoginFailed(_("The login at %(label)s was cancelled or refused. You were not logged in.") % label)
        raise LoginFailed(_("%(label)s could not log you in. Please try again.") % label)
    try:
        options = {
            "iss": {"essential": True, "value": _issuer(provider, client)},
            "aud": {"essential": True, "value": provider["client_id"]},
        }
        token = client.authorize_access_token(request, claims_options=options)
    except AuthlibBaseError as exc:
        log.warning("OIDC provider %s: login refused: %s", provider["name"], exc)
        if getattr(exc, "error", "") == "mismatching_state":
            raise LoginFailed(
                _("This login was started in another window or has expired. Please start again.")
            ) from exc
        raise LoginFailed(_("%(label)s could not log you in. Please try again.") % label) from exc
    except (JoseError, ValueError) as exc:
        log.warning("OIDC provider %s: ID token refused: %s", provider["name"], exc)
        raise LoginFailed(
            _("The answer from %(label)s could not be verified. You were not logged in.") % label
        ) from exc
    except requests.RequestException as exc:
        log.warning("OIDC provider %s unreachable at callback: %s", provider["name"], exc)
        raise LoginFailed(_("%(label)s cannot be reached. Please try again in a moment.") % label) from exc
    # authlib checks the ID token only when it sent a nonce; "userinfo" is there only after that check.
    claims = token.get("userinfo")
    if not claims or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        log.warning("OIDC provider %s: no verified ID token in the token response", provider["name"])
        raise LoginFailed(_("The answer from %(label)s could not be verified. You were not logged in.") % label)
    return dict(claims)


def _fresh_auth_time(provider: dict[str, Any], claims: dict[str, Any], started_at: float) -> float:
    """When the provider authenticated the citizen, if that was for this login again; else a LoginFailed."""
    auth_time, now = claims.get("auth_time"), time.time()
    if (
        not isinstance(auth_time, int | float)
        or isinstance(auth_time, bool)
        or not started_at - CLOCK_SKEW_SECONDS <= auth_time <= now + CLOCK_SKEW_SECONDS
        or now - auth_time > RELOGIN_MAX_AGE_SECONDS
    ):
        log.warning("OIDC provider %s: no fresh auth_time on a login again (%r)", provider["name"], auth_time)
        raise LoginFailed(
            _(
                "%(label)s did not confirm that you logged in again just now. Nothing was deleted: "
                "please try again, or contact us."
            )
            % {"label": provider["label"]}
        )
    return float(auth_time)
