"""django-oauth-toolkit's endpoints under /o/ (the token endpoint is /o/token/)."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("o/", include("oauth2_provider.urls", namespace="oauth2_provider"))]
