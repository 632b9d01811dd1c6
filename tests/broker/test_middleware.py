"""The caller's address behind trusted proxies: what per-address limits count."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from broker.middleware import TrustedProxyMiddleware


def address_seen(settings, hops: int, forwarded: str | None, remote: str = "10.0.0.5") -> str:  # type: ignore[no-untyped-def]
    settings.TIERS_TRUSTED_PROXY_HOPS = hops
    seen: list[str] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(request.META["REMOTE_ADDR"])
        return HttpResponse()

    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    TrustedProxyMiddleware(view)(RequestFactory().get("/", REMOTE_ADDR=remote, **headers))
    return seen[0]


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "198.51.100.7", "10.0.0.5"),  # no proxy declared: the header is the client's own words
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # a forged entry on the left is ignored
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.9", "198.51.100.7"),
        (2, "198.51.100.7", "10.0.0.5"),  # fewer entries than hops: not from our proxies
        (1, None, "10.0.0.5"),
    ],
)
def test_the_callers_address_is_read_behind_the_declared_proxies_only(settings, hops, forwarded, expected) -> None:  # type: ignore[no-untyped-def]
    assert address_seen(settings, hops, forwarded) == expected
