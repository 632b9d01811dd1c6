"""The citizen portal's pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from consent import policy


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The citizen's home: who may use data about them, and for what."""
    if not policy.is_citizen(request.user):
        raise Http404("No citizen account.")
    return render(request, "consent/dashboard.html", {"profile": request.user.citizen_profile})  # type: ignore[union-attr]
