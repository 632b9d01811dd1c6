"""Public, read-only sharing API: the DCAT-AP catalogue and agreements as ODRL policies."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
