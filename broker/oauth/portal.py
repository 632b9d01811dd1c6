"""Portal pages where an organisation's admins manage its OAuth clients."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from broker import policy
from broker.errors import TiersError
from broker.models import Organisation, User
from broker.oauth import services
from broker.oauth.models import OAuthClient
from broker.policy import OrgAction


class ClientForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    auth_method = forms.ChoiceField(label=gettext_lazy("Authentication method"), choices=OAuthClient.AuthMethod.choices)
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"),
        choices=[(scope, f"{scope}: {text}") for scope, text in services.SCOPES.items()],
        widget=forms.CheckboxSelectMultiple,
        initial=["organisation"],
    )
    jwks = forms.CharField(
        label=gettext_lazy("Public keys (JWK Set, for private_key_jwt)"),
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
    )
    dpop_bound_access_tokens = forms.BooleanField(
        label=gettext_lazy("Require DPoP-bound access tokens"), required=False
    )

    def clean_jwks(self) -> dict[str, Any] | None:
        raw = self.cleaned_data["jwks"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(_("This is not JSON: paste the JWK Set of the client's public keys.")) from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(_('A JWK Set is a JSON object: {"keys": [...]}.'))
        return value


def _organisation_for_admin(request: HttpRequest, slug: str) -> Organisation:
    organisation = get_object_or_404(Organisation, slug=slug)
    if not policy.can(request.user, OrgAction.VIEW_PRIVATE, organisation):
        raise Http404("No such organisation.")
    return organisation


@never_cache  # the page may show a new secret
@login_required
def client_list(request: HttpRequest, slug: str) -> HttpResponse:
    """An organisation's clients, and the form to register one."""
    organisation = _organisation_for_admin(request, slug)
    can_manage = policy.can(request.user, OrgAction.MANAGE_CLIENTS, organisation)
    form = ClientForm(request.POST or None) if can_manage else None
    secret = None
    if request.method == "POST" and form is not None and form.is_valid():
        assert isinstance(request.user, User)
        try:
            client, secret = services.client_register(
                actor=request.user, organisation=organisation, **form.cleaned_data
            )
        except TiersError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _("Client %(id)s registered.") % {"id": client.client_id})
            if secret is None:
                return redirect("client-portal-list", slug=slug)
    context = {
        "organisation": organisation,
        "clients": organisation.oauth_clients.order_by("name"),
        "form": form,
        "can_manage": can_manage,
        "new_secret": secret,
    }
    return render(request, "broker/clients.html", context)


def _client(request: HttpRequest, slug: str, client_id: str) -> OAuthClient:
    organisation = _organisation_for_admin(request, slug)
    return get_object_or_404(OAuthClient, organisation=organisation, client_id=client_id)


@never_cache
@login_required
@require_POST
def client_rotate(request: HttpRequest, slug: str, client_id: str) -> HttpResponse:
    """A new secret, shown once on the page that answers."""
    client = _client(request, slug, client_id)
    assert isinstance(request.user, User)
    try:
        client, secret = services.client_rotate_credentials(actor=request.user, client=client)
    except TiersError as exc:
        messages.error(request, exc.detail)
        return redirect("client-portal-list", slug=slug)
    context = {"organisation": client.organisation, "clients": client.organisation.oauth_clients.order_by("name")}
    context |= {"form": None, "can_manage": True, "new_secret": secret, "rotated": client}
    return render(request, "broker/clients.html", context)


@login_required
@require_POST
def client_disable(request: HttpRequest, slug: str, client_id: str) -> HttpResponse:
    """Disable a client: its tokens stop working at once."""
    client = _client(request, slug, client_id)
    assert isinstance(request.user, User)
    try:
        services.client_disable(actor=request.user, client=client)
    except TiersError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("Client %(id)s disabled.") % {"id": client.client_id})
    return redirect("client-portal-list", slug=slug)
