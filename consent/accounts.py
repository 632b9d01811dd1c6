"""Citizens' own accounts: sign-up with e-mail verification, the export of their data and erasure.

Password reset is Django's own.
"""

from __future__ import annotations

import enum
import re
import time
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from broker import ratelimit
from broker.errors import Conflict, TiersError
from broker.models import User
from broker.security import attempts
from consent import export, services
from consent.models import OidcIdentity
from consent.views import citizen_page

SIGNUPS_PER_ADDRESS_PER_HOUR = 10
# OpenID Connect accounts are named <provider>-<24 hex>: nobody may take such a name first.
RESERVED_USERNAME = re.compile(r"^[a-z0-9_]+-[0-9a-f]{24}$", re.IGNORECASE)


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    """Its own salt, so that a verification link is never also a password-reset link."""

    key_salt = "tiers.consent.accounts.EmailVerificationTokenGenerator"


verification_tokens = EmailVerificationTokenGenerator()


class SignupForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("Username"), max_length=150)
    email = forms.EmailField(label=gettext_lazy("E-mail address"))
    display_name = forms.CharField(label=gettext_lazy("Name shown to you (optional)"), max_length=150, required=False)
    password = forms.CharField(label=gettext_lazy("Password"), widget=forms.PasswordInput)
    password_again = forms.CharField(label=gettext_lazy("Password, again"), widget=forms.PasswordInput)

    def clean_username(self) -> str:
        username = str(self.cleaned_data["username"])
        if RESERVED_USERNAME.match(username):
            raise ValidationError(_("This username is reserved: please choose another."))
        return username

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password") != data.get("password_again"):
            self.add_error("password_again", _("The two passwords differ."))
        elif data.get("password"):
            candidate = User(username=str(data.get("username", "")), email=str(data.get("email", "")))
            try:
                validate_password(str(data["password"]), candidate)
            except ValidationError as exc:
                self.add_error("password", exc)
        return data


def _send_verification(request: HttpRequest, user: User) -> None:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse("citizen-verify", args=[uid, verification_tokens.make_token(user)])
    body = render_to_string("consent/verify_email.txt", {"user": user, "url": f"{settings.TIERS_BASE_URL}{path}"})
    send_mail(_("Tiers: confirm your e-mail address"), body, None, [user.email])


def _unverified(username: str, email: str) -> User | None:
    """An account opened with this username and address and never confirmed."""
    return User.objects.filter(
        username__iexact=username,
        email__iexact=email,
        is_active=False,
        citizen_profile__awaiting_email_verification=True,
    ).first()


def signup(request: HttpRequest) -> HttpResponse:
    """A citizen opens an account; it works once the e-mail address is confirmed."""
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        address = request.META.get("REMOTE_ADDR", "unknown")
        if not ratelimit.allow(f"signup:{address}", limit=SIGNUPS_PER_ADDRESS_PER_HOUR, window_seconds=3600):
            form.add_error(None, _("Too many sign-ups from your network: please try again later."))
        elif (waiting := _unverified(form.cleaned_data["username"], form.cleaned_data["email"])) is not None:
            _send_verification(request, waiting)  # the same person asking again: a fresh link
            return render(request, "consent/signup_sent.html", {"email": waiting.email})
        else:
            try:
                user = services.citizen_register(
                    username=form.cleaned_data["username"],
                    email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                    display_name=form.cleaned_data["display_name"],
                    language=(get_language() or "en")[:2],
                    active=False,
                )
            except TiersError as exc:
                form.add_error("username", exc.detail)
            else:
                _send_verification(request, user)
                return render(request, "consent/signup_sent.html", {"email": user.email})
    return render(request, "consent/signup.html", {"form": form})


def verify_email(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The link from the verification mail opens the account."""
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))))
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or not verification_tokens.check_token(user, token):
        return render(request, "consent/verify_failed.html", status=400)
    services.citizen_verify_email(citizen=user)
    messages.success(request, _("Your e-mail address is confirmed. You can log in."))
    return redirect("login")


# --- my data and account ---------------------------------------------------------------------------

# Erasure asks for the password again: a session left open is not enough to erase an account. Five tries
# a quarter of an hour leave room for typing mistakes, and none for guessing.
ERASURE_ATTEMPTS_PER_CITIZEN = 5
ERASURE_WINDOW_SECONDS = 15 * 60
ERASURE_ATTEMPTS_SCOPE = "erasure-password"
# An account without a password (opened at an identity provider) confirms by logging in there again: the
# callback of that login again, and only of it, stamps the session with the ID token's auth_time (consent.oidc).
PROVIDER_LOGIN_SESSION_KEY = "tiers_provider_login_at"
PROVIDER_LOGIN_FRESH_SECONDS = 10 * 60


class Confirmation(enum.Enum):
    """Whether the person asking to erase the account proved again that it is theirs."""

    CONFIRMED = enum.auto()
    WRONG_PASSWORD = enum.auto()
    TOO_MANY_ATTEMPTS = enum.auto()
    LOG_IN_AGAIN = enum.auto()


def provider_login_is_fresh(session: SessionBase) -> bool:
    """This session logged in at an identity provider less than ten minutes ago."""
    logged_in_at = session.get(PROVIDER_LOGIN_SESSION_KEY)
    return isinstance(logged_in_at, int | float) and time.time() - logged_in_at < PROVIDER_LOGIN_FRESH_SECONDS


def identity_confirm(citizen: User, password: str, session: SessionBase) -> Confirmation:
    """The password again; for an account without one, a login at its identity provider minutes ago."""
    if not citizen.has_usable_password():
        return Confirmation.CONFIRMED if provider_login_is_fresh(session) else Confirmation.LOG_IN_AGAIN
    # Counted first, then compared, so that guesses sent at once cannot all slip under the limit.
    key, window = str(citizen.pk), ERASURE_WINDOW_SECONDS
    if not attempts.hit(ERASURE_ATTEMPTS_SCOPE, key, limit=ERASURE_ATTEMPTS_PER_CITIZEN, window_seconds=window):
        return Confirmation.TOO_MANY_ATTEMPTS
    if not citizen.check_password(password):
        return Confirmation.WRONG_PASSWORD
    attempts.clear(ERASURE_ATTEMPTS_SCOPE, key, window_seconds=window)
    return Confirmation.CONFIRMED


def account_erase(request: HttpRequest, citizen: User) -> int:
    """Erase the account (consent.services.citizen_erase), then end the session that asked."""
    erased = services.citizen_erase(citizen=citizen)
    logout(request)
    return erased


def _provider_of(citizen: User) -> dict[str, Any] | None:
    """The configured identity provider the citizen logs in with, if any."""
    names = set(OidcIdentity.objects.filter(user=citizen).values_list("provider", flat=True))
    return next((provider for provider in settings.TIERS_OIDC_PROVIDERS if provider["name"] in names), None)


@citizen_page
def account(request: HttpRequest, citizen: User) -> HttpResponse:
    """My data and account: download everything Tiers holds about me, or delete the account."""
    return render(request, "consent/account.html")


@never_cache
@citizen_page
def account_export(request: HttpRequest, citizen: User) -> HttpResponse:
    """Everything Tiers holds about me as a file: the very JSON of GET /api/v1/me/export (GDPR Art. 15, 20)."""
    response = HttpResponse(export.citizen_export_json(citizen), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{export.filename()}"'
    return response


class AccountErasureForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm = forms.BooleanField(
        label=gettext_lazy("I understand that my account is deleted for good, and that this cannot be undone."),
        error_messages={"required": gettext_lazy("Tick this box to confirm, or keep your account.")},
    )

    def __init__(self, *args: Any, has_password: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not has_password:
            del self.fields["password"]


@sensitive_post_parameters("password")
@never_cache
@citizen_page
def account_erasure(request: HttpRequest, citizen: User) -> HttpResponse:
    """Delete my account, after a page saying what happens, and the password again."""
    has_password = citizen.has_usable_password()
    form = AccountErasureForm(request.POST if request.method == "POST" else None, has_password=has_password)
    status = 200
    if form.is_bound and form.is_valid():
        outcome = identity_confirm(citizen, form.cleaned_data.get("password", ""), request.session)
        if outcome is Confirmation.CONFIRMED:
            try:
                account_erase(request, citizen)
            except Conflict:
                status = 409
                form.add_error(
                    None,
                    _(
                        "This account also works for an organisation or for Tiers: leave those roles first "
                        "(an administrator of the organisation removes the membership), then delete the account."
                    ),
                )
            else:
                return redirect("citizen-goodbye")
        elif outcome is Confirmation.TOO_MANY_ATTEMPTS:
            status = 429
            form.add_error(None, _("Too many attempts. Please wait a quarter of an hour and try again."))
        elif outcome is Confirmation.WRONG_PASSWORD:
            form.add_error("password", _("This is not your password. Nothing was deleted: please try again."))
        else:
            form.add_error(None, _("Please log in again with your identity provider first. Nothing was deleted."))
    context = {
        "form": form,
        "has_password": has_password,
        "provider": None if has_password else _provider_of(citizen),
        "log_in_again": not has_password and not provider_login_is_fresh(request.session),
        "fresh_minutes": PROVIDER_LOGIN_FRESH_SECONDS // 60,
    }
    return render(request, "consent/account_erasure.html", context, status=status)


def goodbye(request: HttpRequest) -> HttpResponse:
    """After an erasure: the account is gone, and this says what that meant."""
    return render(request, "consent/goodbye.html")
