"""Tiers' URLs plus two tiny endpoints that differ only in the resource check (bench_oauth.py, part B)."""

from __future__ import annotations

from django.urls import path
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker.urls import handler400, handler403, handler404, handler500
from broker.urls import urlpatterns as tiers_urlpatterns

PAYLOAD = {"ok": True}


class Protected(APIView):
    """The project's default authentication (AccessTokenAuthentication first) and IsAuthenticated."""

    permission_classes = [IsAuthenticated]
    throttle_classes = []  # the same on both: the comparison is of the resource check alone

    def get(self, request: Request) -> Response:
        return Response(PAYLOAD)


class Unprotected(APIView):
    """No authentication at all."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def get(self, request: Request) -> Response:
        return Response(PAYLOAD)


urlpatterns = [
    path("bench/protected", Protected.as_view(), name="bench-protected"),
    path("bench/unprotected", Unprotected.as_view(), name="bench-unprotected"),
    *tiers_urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
