"""Onboarding pages: apply for an organisation, invite members, accept an invitation.

The applicant becomes the organisation's admin at once; the organisation waits
for an operator (see broker/workspace). Invitations are sent once it is verified.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from broker import policy, selectors, services
from broker.errors import Forbidden, NotFound, TiersError
from broker.models import Invitation, Organisation, User
from broker.onboarding.forms import ApplicationForm, InvitationForm
from broker.policy import OrgAction


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # login_required let it through
    return request.user


@login_required
def organisation_apply(request: HttpRequest) -> HttpResponse:
    """The application form; the organisation is recorded pending, with the applicant as its admin."""
    form = ApplicationForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            organisation = services.organisation_apply(actor=_user(request), **form.cleaned_data)
        except TiersError as exc:
            for problem in exc.extensions.get("errors") or [{"detail": exc.detail}]:
                field = problem.get("field") or exc.extensions.get("field")
                form.add_error(field if field in form.fields else None, problem["detail"])
        else:
            text = _("Your application for %(name)s is recorded. An operator of Tiers verifies it and tells %(email)s.")
            messages.success(request, text % {"name": organisation.name, "email": organisation.contact_email})
            return redirect("organisation-detail", slug=organisation.slug)
    return render(request, "onboarding/apply.html", {"form": form})


def _organisation_to_manage(request: HttpRequest, slug: str) -> Organisation:
    """The organisation, for those who manage its members; 404 to outsiders, 403 to weaker roles."""
    organisation = get_object_or_404(Organisation, slug=slug)
    try:
        policy.require(request.user, OrgAction.MANAGE_MEMBERS, organisation)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    except Forbidden as exc:
        raise PermissionDenied(exc.detail) from exc
    return organisation


@login_required
def members(request: HttpRequest, slug: str) -> HttpResponse:
    """An organisation's members and invitations, and the form to invite someone with a role."""
    organisation = _organisation_to_manage(request, slug)
    form = InvitationForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            invitation, _token = services.invitation_send(
                actor=_user(request), organisation=organisation, **form.cleaned_data
            )
        except TiersError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _("Invitation sent to %(email)s.") % {"email": invitation.email})
            return redirect("organisation-members", slug=slug)
    context = {
        "organisation": organisation,
        "members": selectors.members_of(organisation),
        "invitations": organisation.invitations.select_related("accepted_by").order_by("-created_at")[:50],
        "now": timezone.now(),
        "form": form,
    }
    return render(request, "onboarding/members.html", context)


@never_cache
@login_required
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """What the invitation offers, and the button to accept it (a POST)."""
    try:
        invitation: Invitation = services.invitation_find(token)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    if request.method == "POST":
        try:
            services.invitation_accept(user=_user(request), token=token)
        except TiersError as exc:
            messages.error(request, exc.detail)
        else:
            text = _("Welcome to %(name)s.") % {"name": invitation.organisation.name}
            messages.success(request, text)
            return redirect("organisation-detail", slug=invitation.organisation.slug)
    context = {
        "invitation": invitation,
        "expired": invitation.expires_at <= timezone.now(),
        "usable": invitation.accepted_at is None
        and invitation.expires_at > timezone.now()
        and invitation.organisation.is_verified,
    }
    return render(request, "onboarding/invitation.html", context)
