"""The security page of a person who logs in with a second factor: their passkeys and recovery codes.

Only a session that passed the second factor reaches it: what is added or removed here decides
how the account is protected, so a password alone must not be enough to change it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST

from broker.errors import Forbidden, TiersError
from broker.models import User
from broker.security import passkeys, recovery, totp, twofactor
from broker.security.models import Passkey
from broker.security.views import passkey_endpoint, read_json


def _verified_user(request: HttpRequest) -> User:
    """The person, once their session has passed the second factor; Forbidden for anyone else."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated or not twofactor.is_verified(request):
        raise Forbidden(
            _("Only a session that passed the second factor may see or change these settings. Log in again.")
        )
    return user


def _page(request: HttpRequest, user: User, *, status: int = 200) -> HttpResponse:
    device = totp.device_of(user)
    keys = list(Passkey.objects.filter(user=user))
    has_totp = device is not None and device.is_confirmed
    context = {
        "totp_device": device if has_totp else None,
        "passkeys": keys,
        # The last passkey of someone with no authenticator app stays: it is their only second factor.
        "can_remove": has_totp or len(keys) > 1 or not totp.requires_second_factor(user),
        "recovery_left": recovery.remaining(user),
        "recovery_count": recovery.CODE_COUNT,
        "name_max_length": passkeys.NAME_MAX_LENGTH,
    }
    return render(request, "security/security.html", context, status=status)


def second_factor_passed(view: Callable[[HttpRequest, User], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """A page of the security settings: log in first; a session without the second factor gets a 403."""

    @wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(reverse("account-security"))
        try:
            user = _verified_user(request)
        except Forbidden as exc:
            raise PermissionDenied(exc.detail) from None
        return view(request, user)

    return wrapped


@require_GET
@never_cache
@second_factor_passed
def security(request: HttpRequest, user: User) -> HttpResponse:
    """The person's second factors: the authenticator app, passkeys to add or remove, recovery codes."""
    return _page(request, user)


@passkey_endpoint
def passkey_register_options(request: HttpRequest) -> JsonResponse:
    """Options for navigator.credentials.create(), with a fresh challenge; the person's passkeys excluded."""
    user = _verified_user(request)
    rp = passkeys.relying_party(request)
    return JsonResponse(passkeys.registration_options(user=user, rp=rp, session=request.session))


@passkey_endpoint
def passkey_register(request: HttpRequest) -> JsonResponse:
    """The authenticator's new credential and the name the person gave it: kept once verified."""
    user = _verified_user(request)
    body = read_json(request)
    rp = passkeys.relying_party(request)
    passkey = passkeys.passkey_register(
        user=user, name=body.get("name"), credential=body.get("credential"), rp=rp, session=request.session
    )
    messages.success(request, _("Passkey “%(name)s” added.") % {"name": passkey.name})
    return JsonResponse({"redirect": reverse("account-security")}, status=201)


@require_POST
@csrf_protect
@never_cache
@second_factor_passed
def passkey_remove(request: HttpRequest, user: User) -> HttpResponse:
    """Remove one of the person's passkeys (a plain form: no script needed)."""
    try:
        passkeys.passkey_remove(actor=user, user=user, passkey_id=request.POST.get("passkey"))
    except TiersError as exc:
        messages.error(request, exc.detail)
        return _page(request, user, status=exc.status)
    messages.success(request, _("The passkey was removed."))
    return redirect("account-security")


@require_POST
@csrf_protect
@never_cache
@second_factor_passed
def recovery_codes_generate(request: HttpRequest, user: User) -> HttpResponse:
    """A new set of recovery codes, shown once on the page this answers with; the old set stops working."""
    codes = recovery.recovery_codes_generate(actor=user, user=user)
    context = {"codes": codes, "next": reverse("account-security")}
    return render(request, "security/recovery_codes.html", context)
