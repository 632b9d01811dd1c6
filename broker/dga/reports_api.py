"""The public API of the DGA reports: Art. 20(1) records, the Art. 20(2) annual report, the registration dossier.

No login needed. JSON by default; CSV for the records; HTML and tagged PDF
(WeasyPrint) for the annual report and the dossier. Choose with the Accept
header or `?format=`.
"""

from __future__ import annotations

import json
from typing import Any

import segno
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker.dga import dossier, pdf, reports
from broker.errors import InvalidInput
from broker.problems import PROBLEM_JSON


class MadeByTheView(renderers.BaseRenderer):
    """Text or bytes the view made itself; a problem (a dict) goes out as JSON."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode()
        return json.dumps(data).encode()


class CSVRenderer(MadeByTheView):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class HTMLRenderer(MadeByTheView):
    media_type = "text/html"
    format = "html"
    charset = "utf-8"


class PDFRenderer(MadeByTheView):
    media_type = "application/pdf"
    format = "pdf"
    charset = None


PROBLEM = OpenApiResponse(OpenApiTypes.OBJECT, description="a problem (RFC 9457)")


class PublicView(APIView):
    permission_classes = [AllowAny]


def _year(raw: str | None) -> int:
    try:
        year = int(raw or "")
    except ValueError:
        detail = "Give the year as ?year=YYYY."
        raise InvalidInput(detail, errors=[{"field": "year", "detail": detail}]) from None
    reports.check_year(year)
    return year


def _pdf(html: str, filename: str) -> Response:
    response = Response(pdf.html_to_pdf(html))
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


class Records(PublicView):
    """Art. 20(1): every organisation given the possibility to process data in a year, with dates, purpose, fees."""

    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    @extend_schema(
        parameters=[OpenApiParameter("year", int, required=True, description="the UTC calendar year, e.g. 2026")],
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="the year's records"),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="a header row, then one row per record"),
            (422, PROBLEM_JSON): PROBLEM,
        },
    )
    def get(self, request: Request) -> Response:
        year = _year(request.query_params.get("year"))
        body = reports.records(year)
        if request.accepted_renderer.format == "csv":
            response = Response(reports.records_csv(body))
            response["Content-Disposition"] = f'attachment; filename="tiers-records-{year}.csv"'
            return response
        return Response(body)


def annual_html(body: dict[str, Any]) -> str:
    """The annual report as a standalone, script-free HTML page (also the source of the PDF)."""
    document = body["document"]
    url = settings.TIERS_BASE_URL + reverse("report-annual", kwargs={"year": document["year"]})
    qr = segno.make(url, error="m").svg_inline(scale=3, title=url)
    context = {
        "report": body,
        "document": document,
        "json_url": url,
        "jwks_url": f"{settings.TIERS_BASE_URL}/oauth/jwks",
        "qr_svg": mark_safe(qr),  # noqa: S308 (segno's own SVG of our own URL)
    }
    return render_to_string("reports/annual.html", context)


class Annual(PublicView):
    """Art. 20(2): the year's activity report, signed (JWS over its RFC 8785 form); stored once published."""

    renderer_classes = [renderers.JSONRenderer, HTMLRenderer, PDFRenderer]

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="{document, jws, sha256, published, published_at}"
            ),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="the report as a web page"),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="the report as tagged PDF"),
            (404, PROBLEM_JSON): PROBLEM,
            (503, PROBLEM_JSON): PROBLEM,
        },
    )
    def get(self, request: Request, year: int) -> Response:
        body = reports.annual_report(year)
        chosen = request.accepted_renderer.format
        if chosen == "json":
            return Response(body)
        html = annual_html(body)
        return Response(html) if chosen == "html" else _pdf(html, f"tiers-annual-report-{year}.pdf")


class Dossier(PublicView):
    """The operator's registration content (Art. 19(4) or Art. 11(6)), generated from the live configuration."""

    renderer_classes = [renderers.JSONRenderer, PDFRenderer, HTMLRenderer]

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="the registration content"),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="the same as tagged PDF"),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="the same as a web page"),
            (404, PROBLEM_JSON): PROBLEM,
            (503, PROBLEM_JSON): PROBLEM,
        },
    )
    def get(self, request: Request) -> Response:
        body = dossier.dossier()
        chosen = request.accepted_renderer.format
        if chosen == "json":
            return Response(body)
        activities = body.get("data_altruism_activities") or body.get("intermediation_service")
        html = render_to_string("reports/dossier.html", {"dossier": body, "activities": activities})
        return Response(html) if chosen == "html" else _pdf(html, "tiers-registration-dossier.pdf")
