"""The operator's DGA registration as public JSON, with links to every public record. No login needed.

Before an operator records the registration the answer is still 200, with
status "unregistered" and empty fields: the endpoint always exists, and a
client can tell "not registered" from "no such endpoint" (docs/transparency.md).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker.dga import logo
from broker.dga.models import OperatorProfile
from broker.dga.profile import operator_profile

UNREGISTERED = "unregistered"
REGULATION = "Regulation (EU) 2022/868"
REGULATION_URL = "http://data.europa.eu/eli/reg/2022/868/oj"
# Where each role's registration is made: Art. 19 (data altruism), Art. 11 (notified intermediation service).
ROLE_ARTICLES: dict[str, str] = {
    OperatorProfile.Role.DATA_ALTRUISM.value: "Art. 19",
    OperatorProfile.Role.INTERMEDIATION.value: "Art. 11",
}
STATUSES = [*OperatorProfile.Status.values, UNREGISTERED]


# Raw schemas rather than ChoiceFields: no shared enum component whose name could collide with another app's.
@extend_schema_field({"type": "string", "enum": STATUSES})
class StatusField(serializers.CharField):
    pass


@extend_schema_field({"type": "string", "enum": OperatorProfile.Role.values})
class RoleCodeField(serializers.CharField):
    pass


class RoleSerializer(serializers.Serializer[Any]):
    code = RoleCodeField()
    name = serializers.CharField()
    article = serializers.CharField(help_text="the article of the regulation under which the role is registered")
    regulation = serializers.CharField()
    regulation_url = serializers.URLField()


class RegisterLinksSerializer(serializers.Serializer[Any]):
    register = serializers.URLField(help_text="this document")
    transparency = serializers.URLField(help_text="the public pages")
    agreements = serializers.URLField(help_text="agreements in force and ended (page)")
    agreements_api = serializers.URLField()
    grants = serializers.URLField(help_text="grants, active and ended (page)")
    transparency_log = serializers.URLField(help_text="the transparency log and its proof check (page)")
    transparency_log_api = serializers.URLField()
    jwks = serializers.URLField(help_text="the keys that sign checkpoints, receipts and reports")
    annual_reports = serializers.URLField(help_text="published annual activity reports (page)")
    annual_report_api = serializers.CharField(help_text="URI template of one year's report: {year}")
    catalog_api = serializers.URLField(help_text="DCAT-AP catalogue of the datasets offered")


class RegisterSerializer(serializers.Serializer[Any]):
    status = StatusField(help_text='"unregistered" until an operator records the registration')
    status_name = serializers.CharField()
    legal_name = serializers.CharField(allow_null=True)
    role = RoleSerializer(allow_null=True)
    registration_number = serializers.CharField(allow_null=True)
    competent_authority = serializers.CharField(allow_null=True)
    country = serializers.CharField(allow_null=True, help_text="ISO 3166-1 alpha-2")
    address = serializers.CharField(allow_null=True)
    contact_email = serializers.EmailField(allow_null=True)
    website = serializers.URLField(allow_null=True)
    union_register_url = serializers.URLField(allow_null=True)
    registered_at = serializers.DateField(allow_null=True)
    recognition_label = serializers.CharField(
        allow_null=True, help_text="the label the DGA lets Tiers use, only while the registration is active"
    )
    logo_url = serializers.URLField(
        allow_null=True, help_text="the common logo of Reg. (EU) 2023/1622, only while active and installed"
    )
    links = RegisterLinksSerializer()


def _url(path: str) -> str:
    return f"{settings.TIERS_BASE_URL}{path}"


def register_links() -> dict[str, str]:
    """Where the public records are, as absolute URLs under TIERS_BASE_URL."""
    return {
        "register": _url(reverse("register")),
        "transparency": _url(reverse("transparency")),
        "agreements": _url(reverse("transparency-agreements")),
        "agreements_api": _url(reverse("agreement-list")),
        "grants": _url(reverse("transparency-grants")),
        "transparency_log": _url(reverse("transparency-log")),
        "transparency_log_api": _url(reverse("audit-log")),
        "jwks": _url(reverse("jwks")),
        "annual_reports": _url(reverse("transparency-reports")),
        # Another module serves the reports; a plain path keeps this answer independent of it.
        "annual_report_api": _url("/api/v1/reports/annual/{year}"),
        "catalog_api": _url(reverse("catalog")),
    }


def _blank(value: str) -> str | None:
    return value or None


def register_entry(profile: OperatorProfile | None) -> dict[str, Any]:
    """The register entry as the API and the page show it; empty fields before registration."""
    links = register_links()
    if profile is None:
        empty = dict.fromkeys(RegisterSerializer().fields, None)
        return {**empty, "status": UNREGISTERED, "status_name": _("not registered"), "links": links}
    active = logo.may_show_recognition(profile)
    return {
        "status": profile.status,
        "status_name": str(profile.get_status_display()),
        "legal_name": profile.legal_name,
        "role": {
            "code": profile.role,
            "name": str(profile.get_role_display()),
            "article": ROLE_ARTICLES.get(profile.role, ""),
            "regulation": REGULATION,
            "regulation_url": REGULATION_URL,
        },
        "registration_number": _blank(profile.registration_number),
        "competent_authority": _blank(profile.competent_authority),
        "country": profile.country,
        "address": _blank(profile.address),
        "contact_email": profile.contact_email,
        "website": _blank(profile.website),
        "union_register_url": _blank(profile.union_register_url),
        "registered_at": profile.registered_at,
        "recognition_label": logo.label(profile.role) if active else None,
        "logo_url": _url(reverse("transparency-logo")) if active and logo.logo_svg() is not None else None,
        "links": links,
    }


class Register(APIView):
    """Tiers' entry in the DGA register: who runs it, under which article, registered by whom, and its status."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: RegisterSerializer}, operation_id="register_retrieve")
    def get(self, request: Request) -> Response:
        return Response(RegisterSerializer(register_entry(operator_profile())).data)
