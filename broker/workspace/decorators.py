"""Who reaches the operators' workspace: logged-in operators only, and, when required, with a second factor."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from broker.models import User
from broker.security.twofactor import VERIFIED_SESSION_KEY

P = ParamSpec("P")
# Set in the session when the person passes the second factor at /accounts/2fa/ (broker/security/twofactor.py).
SECOND_FACTOR_SESSION_KEY = VERIFIED_SESSION_KEY


def second_factor_required() -> bool:
    return bool(getattr(settings, "TIERS_OPERATOR_2FA_REQUIRED", False))


def second_factor_missing(request: HttpRequest) -> bool:
    return second_factor_required() and not request.session.get(SECOND_FACTOR_SESSION_KEY, False)


def _operator(request: HttpRequest) -> User:
    """The operator behind the request; 404 to everyone else, so the workspace does not show it exists."""
    user = request.user
    if not isinstance(user, User) or not user.is_operator:
        raise Http404("Not found.")
    return user


def operator_required(
    view: Callable[Concatenate[HttpRequest, User, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """Log in first; operators get the page (with the operator as second argument), anyone else a 404.

    A session opened by the login form has passed the second factor before it gets here
    (broker.security.twofactor). When TIERS_OPERATOR_2FA_REQUIRED is on, any other session
    of an operator that has not passed it (opened another way) is sent to the second-factor page.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        operator = _operator(request)
        if second_factor_missing(request):
            return redirect(f"{reverse('workspace-second-factor')}?{urlencode({'next': request.path})}")
        return view(request, operator, *args, **kwargs)

    return login_required(wrapped)


def operator_only(
    view: Callable[Concatenate[HttpRequest, User, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """Like operator_required, without the second factor: for the second-factor page itself."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        return view(request, _operator(request), *args, **kwargs)

    return login_required(wrapped)
