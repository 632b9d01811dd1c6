"""Public, read-only sharing API: the DCAT-AP catalogue and agreements as ODRL policies."""

from __future__ import annotations

from django.urls import URLPattern, path

from sharing import api_public

urlpatterns: list[URLPattern] = [
    path("catalog", api_public.Catalog.as_view(), name="catalog"),
    path("agreements/<uuid:agreement_id>/odrl", api_public.AgreementPolicy.as_view(), name="agreement-odrl"),
]
