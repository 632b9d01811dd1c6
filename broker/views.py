"""Portal pages of the trust core: the home page and organisation pages."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from broker import policy, selectors
from broker.errors import NotFound
from broker.models import Organisation
from broker.policy import OrgAction
from broker.security import attempts, totp, twofactor


def home(request: HttpRequest) -> HttpResponse:
    """What Tiers is, and where each kind of visitor goes next."""
    organisations = selectors.organisations_of(request.user)
    return render(request, "broker/home.html", {"organisations": organisations})


@login_required
def organisation_index(request: HttpRequest) -> HttpResponse:
    """A member's organisations; straight to the page when there is one."""
    organisations = list(selectors.organisations_of(request.user))
    if len(organisations) == 1:
        return redirect("organisation-detail", slug=organisations[0].slug)
    return render(request, "broker/organisation_index.html", {"organisations": organisations})


@login_required
def organisation_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """An organisation's own page, for its members and operators only."""
    organisation = get_object_or_404(Organisation, slug=slug)
    try:
        policy.require(request.user, OrgAction.VIEW_PRIVATE, organisation)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    context = {
        "organisation": organisation,
        "members": selectors.members_of(organisation),
        "role": policy.role_in(request.user, organisation),
    }
    return render(request, "broker/organisation_detail.html", context)


LOGIN_ATTEMPTS_PER_USERNAME = 10
LOGIN_ATTEMPTS_PER_ADDRESS = 50
LOGIN_WINDOW_SECONDS = 15 * 60


class LoginView(auth_views.LoginView):
    """Django's login, throttled per username and per address against password guessing.

    The counts survive a Redis outage (broker.security.attempts). Operators and organisation
    admins go on to the second factor (/accounts/2fa/) with a session that is only half logged in.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", "")).lower()[:150]
        address = request.META.get("REMOTE_ADDR", "unknown")
        window = LOGIN_WINDOW_SECONDS
        by_user = attempts.hit("login-user", username, limit=LOGIN_ATTEMPTS_PER_USERNAME, window_seconds=window)
        by_address = attempts.hit("login-addr", address, limit=LOGIN_ATTEMPTS_PER_ADDRESS, window_seconds=window)
        if not (by_user and by_address):
            form = self.get_form()
            form.is_bound = True
            form.add_error(None, _("Too many attempts. Please wait a quarter of an hour and try again."))
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)  # logs in: a new session
        user = form.get_user()
        attempts.clear("login-user", user.get_username().lower(), window_seconds=LOGIN_WINDOW_SECONDS)
        if not totp.requires_second_factor(user):
            return response
        twofactor.begin(self.request)
        return redirect(f"{reverse('two-factor')}?{urlencode({'next': self.get_success_url()})}")
