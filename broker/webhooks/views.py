"""The portal page where an organisation's admins manage webhooks and replay dead deliveries."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from broker import policy
from broker.errors import TiersError
from broker.models import Organisation, WebhookDelivery, WebhookEndpoint
from broker.policy import OrgAction
from broker.webhooks import services

RECENT = 20


class EndpointForm(forms.Form):
    url = forms.CharField(label=gettext_lazy("URL"), max_length=500, widget=forms.URLInput)


def _organisation(request: HttpRequest, slug: str) -> Organisation:
    """The organisation, for those who manage its webhooks; anyone else is told it does not exist."""
    organisation = get_object_or_404(Organisation, slug=slug)
    if not policy.can(request.user, OrgAction.MANAGE_WEBHOOKS, organisation):
        raise Http404("No such organisation.")
    return organisation


@login_required
def webhook_list(request: HttpRequest, slug: str) -> HttpResponse:
    """Endpoints, recent deliveries and dead letters; POST registers an endpoint."""
    organisation = _organisation(request, slug)
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_register(by=request.user, organisation=organisation, url=form.cleaned_data["url"])
        except TiersError as exc:
            form.add_error("url", exc.detail)
        else:
            messages.success(request, _("The endpoint is registered."))
            return redirect("webhook-portal-list", slug=organisation.slug)
    deliveries = WebhookDelivery.objects.filter(endpoint__organisation=organisation).select_related("endpoint")
    context = {
        "organisation": organisation,
        "endpoints": WebhookEndpoint.objects.filter(organisation=organisation).order_by("-enabled", "-created_at"),
        "recent": deliveries.order_by("-created_at")[:RECENT],
        "dead": deliveries.filter(state=WebhookDelivery.State.DEAD).order_by("-created_at")[:100],
        "form": form,
    }
    return render(request, "webhooks/list.html", context)


@login_required
@require_POST
def webhook_disable(request: HttpRequest, slug: str, endpoint_id: uuid.UUID) -> HttpResponse:
    organisation = _organisation(request, slug)
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id, organisation=organisation)
    services.endpoint_disable(by=request.user, endpoint=endpoint)
    messages.success(request, _("The endpoint is disabled."))
    return redirect("webhook-portal-list", slug=organisation.slug)


@login_required
@require_POST
def delivery_replay(request: HttpRequest, slug: str, delivery_id: uuid.UUID) -> HttpResponse:
    organisation = _organisation(request, slug)
    delivery = get_object_or_404(
        WebhookDelivery.objects.select_related("endpoint__organisation"),
        pk=delivery_id,
        endpoint__organisation=organisation,
    )
    try:
        services.delivery_replay(by=request.user, delivery=delivery)
    except TiersError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("The delivery is queued again."))
    return redirect("webhook-portal-list", slug=organisation.slug)
