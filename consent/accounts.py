"""Citizens' own accounts: sign-up with e-mail verification. Password reset is Django's own."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
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

from broker import ratelimit
from broker.errors import TiersError
from broker.models import User
from consent import services

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
