"""The second-factor step: enrol an authenticator app, or give its code, a recovery code or a passkey."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from broker.errors import Forbidden, InvalidInput, TiersError
from broker.models import User
from broker.problems import problem_response
from broker.security import attempts, passkeys, recovery, totp, twofactor

# RFC 6238 codes have a million values: five tries a quarter of an hour leave a guesser no chance.
# Recovery codes and passkey answers count against the same limit.
CODE_ATTEMPTS_PER_USER = 5
CODE_WINDOW_SECONDS = 15 * 60
ATTEMPTS_SCOPE = "totp"
# From this many unused recovery codes down, the person is asked to make a new set.
RECOVERY_CODES_LOW = 2


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, has_totp: bool, enrolling: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["code"]
        if enrolling:
            field.widget.attrs["inputmode"] = "numeric"
        elif has_totp:
            field.label = gettext_lazy("Code from your authenticator app, or a recovery code")
        else:
            field.label = gettext_lazy("Recovery code")


def _next_url(request: HttpRequest) -> str:
    candidate = str(request.POST.get("next") or request.GET.get("next") or "")
    safe = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return candidate if candidate and safe else str(settings.LOGIN_REDIRECT_URL)


def _allowed_attempt(user: User) -> bool:
    """Count one attempt at the second factor; False past the limit."""
    return attempts.hit(ATTEMPTS_SCOPE, str(user.pk), limit=CODE_ATTEMPTS_PER_USER, window_seconds=CODE_WINDOW_SECONDS)


def _passed(request: HttpRequest, user: User) -> None:
    """The second factor is given: the count starts again and the session is fully logged in."""
    attempts.clear(ATTEMPTS_SCOPE, str(user.pk), window_seconds=CODE_WINDOW_SECONDS)
    twofactor.complete(request)


def _code_accepted(request: HttpRequest, user: User, code: str, *, enrolling: bool, has_totp: bool) -> bool:
    """Check a TOTP code or a recovery code; a recovery code tells the person how many are left."""
    if enrolling:
        return totp.device_confirm(user=user, code=code)
    if recovery.looks_like_recovery_code(code):
        left = recovery.recovery_code_use(user=user, code=code)
        if left is not None:
            messages.warning(request, _recovery_left_message(left))
        return left is not None
    return has_totp and totp.code_verify(user=user, code=code)


def _recovery_left_message(left: int) -> str:
    message = ngettext(
        "Recovery code accepted. You have %(count)d recovery code left.",
        "Recovery code accepted. You have %(count)d recovery codes left.",
        left,
    ) % {"count": left}
    if left <= RECOVERY_CODES_LOW:
        return " ".join((message, _("Make a new set on your security page.")))
    return message


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def two_factor(request: HttpRequest) -> HttpResponse:
    """After the password: enrol a device (QR code, then a first code), or give a code or a passkey."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    next_url = _next_url(request)
    if twofactor.is_verified(request) or not twofactor.is_pending(request):
        return redirect(next_url)
    device = totp.device_of(user)
    has_totp = device is not None and device.is_confirmed
    has_passkeys = passkeys.has_passkeys(user)
    enrolling = not has_totp and not has_passkeys
    form = CodeForm(request.POST or None, has_totp=has_totp, enrolling=enrolling)
    status = 200
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        if not _allowed_attempt(user):
            status = 429
            form.add_error("code", _("Too many codes tried. Please wait a quarter of an hour and try again."))
        elif _code_accepted(request, user, code, enrolling=enrolling, has_totp=has_totp):
            _passed(request, user)
            if not enrolling:
                return redirect(next_url)
            codes = recovery.recovery_codes_generate(actor=user, user=user)
            return render(request, "security/recovery_codes.html", {"codes": codes, "next": next_url})
        else:
            status = 400
            form.add_error("code", _("This code is not valid. Check your device's clock and give the current code."))
    context: dict[str, object] = {
        "form": form,
        "next": next_url,
        "enrolling": enrolling,
        "has_totp": has_totp,
        "has_passkeys": has_passkeys,
    }
    if enrolling:
        device = device or totp.device_start(user=user)
        secret = totp.secret_of(device)
        context["secret"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        context["qr"] = totp.qr_data_uri(totp.provisioning_uri(user, secret))
    return render(request, "security/two_factor.html", context, status=status)


# --- passkeys at the second-factor step (JSON, for broker/static/tiers/passkeys.js) ---------------------


def read_json(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object; InvalidInput for anything else."""
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(_("The request is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise InvalidInput(_("The request must be a JSON object."))
    return body


def problem(exc: TiersError) -> JsonResponse:
    """A refusal as problem+json; its detail is in the person's language, for the page to show."""
    return problem_response(exc.status, detail=exc.detail, slug=exc.slug, title=exc.title)


def passkey_endpoint(view: Callable[[HttpRequest], JsonResponse]) -> Callable[[HttpRequest], JsonResponse]:
    """A JSON endpoint of passkeys.js: POST with the CSRF token, never cached, a refusal as problem+json."""

    @wraps(view)
    def answer(request: HttpRequest) -> JsonResponse:
        try:
            return view(request)
        except TiersError as exc:
            return problem(exc)

    return require_POST(csrf_protect(never_cache(answer)))


def _pending_user(request: HttpRequest) -> User:
    """The person half logged in, who may give a passkey now."""
    user = request.user
    if not isinstance(user, User) or not twofactor.is_pending(request) or twofactor.is_verified(request):
        raise Forbidden(_("No second factor is awaited: log in with your password first."))
    return user


@passkey_endpoint
def passkey_options(request: HttpRequest) -> JsonResponse:
    """Options for navigator.credentials.get(), naming the person's passkeys, with a fresh challenge."""
    user = _pending_user(request)
    rp = passkeys.relying_party(request)
    return JsonResponse(passkeys.authentication_options(user=user, rp=rp, session=request.session))


@passkey_endpoint
def passkey_verify(request: HttpRequest) -> JsonResponse:
    """The authenticator's answer: when it is good, the session is fully logged in; where to go next."""
    user = _pending_user(request)
    if not _allowed_attempt(user):
        return problem_response(
            429, detail=_("Too many attempts. Please wait a quarter of an hour and try again."), slug="too-many"
        )
    body = read_json(request)
    rp = passkeys.relying_party(request)
    passkeys.passkey_authenticate(user=user, credential=body.get("credential"), rp=rp, session=request.session)
    _passed(request, user)
    return JsonResponse({"redirect": _next_url(request)})


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own login would skip the second factor: it goes through the portal's login instead."""
    return redirect(f"{reverse('login')}?{urlencode({'next': request.GET.get('next') or '/admin/'})}")
