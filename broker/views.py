"""Portal pages of the trust core: the home page and organisation pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from broker import policy, selectors
from broker.errors import NotFound
from broker.models import Organisation
from broker.policy import OrgAction


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
