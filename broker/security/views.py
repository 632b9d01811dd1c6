"""The second-factor pages: enrol an authenticator app, or give its current code."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from broker.models import User
from broker.security import attempts, totp, twofactor

# RFC 6238 codes have a million values: five tries a quarter of an hour leave a guesser no chance.
CODE_ATTEMPTS_PER_USER = 5
CODE_WINDOW_SECONDS = 15 * 60


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


def _next_url(request: HttpRequest) -> str:
    candidate = str(request.POST.get("next") or request.GET.get("next") or "")
    safe = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return candidate if candidate and safe else str(settings.LOGIN_REDIRECT_URL)


def _check(request: HttpRequest, user: User, code: str, *, enrolling: bool) -> tuple[int, str]:
    """(200, "") when the code is good and the session complete; else the status and what to tell the person."""
    key = str(user.pk)
    if not attempts.hit("totp", key, limit=CODE_ATTEMPTS_PER_USER, window_seconds=CODE_WINDOW_SECONDS):
        return 429, _("Too many codes tried. Please wait a quarter of an hour and try again.")
    checked = totp.device_confirm(user=user, code=code) if enrolling else totp.code_verify(user=user, code=code)
    if not checked:
        return 400, _("This code is not valid. Check your device's clock and give the current code.")
    attempts.clear("totp", key, window_seconds=CODE_WINDOW_SECONDS)
    twofactor.complete(request)
    return 200, ""


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def two_factor(request: HttpRequest) -> HttpResponse:
    """After the password: enrol a device (QR code, then a first code), or give the current code."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    next_url = _next_url(request)
    if twofactor.is_verified(request) or not twofactor.is_pending(request):
        return redirect(next_url)
    device = totp.device_of(user)
    enrolling = device is None or not device.is_confirmed
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        status, problem = _check(request, user, form.cleaned_data["code"], enrolling=enrolling)
        if not problem:
            return redirect(next_url)
        form.add_error("code", problem)
    context: dict[str, object] = {"form": form, "next": next_url, "enrolling": enrolling}
    if enrolling:
        device = device or totp.device_start(user=user)
        secret = totp.secret_of(device)
        context["secret"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        context["qr"] = totp.qr_data_uri(totp.provisioning_uri(user, secret))
    return render(request, "security/two_factor.html", context, status=status)


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own login would skip the second factor: it goes through the portal's login instead."""
    return redirect(f"{reverse('login')}?{urlencode({'next': request.GET.get('next') or '/admin/'})}")
