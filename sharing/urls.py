"""Portal pages of data sharing, under /org/<slug>/: datasets, agreements, requests and grants."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
