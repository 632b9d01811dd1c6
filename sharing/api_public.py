"""The public sharing API: the DCAT-AP catalogue and each agreement as an ODRL policy. No login needed."""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import renderers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker.errors import NotFound
from sharing import dcat, odrl, policy

LINKED_DATA = "application/ld+json"


class JSONLDRenderer(renderers.JSONRenderer):
    """JSON-LD: the same JSON, under the media type linked-data clients ask for."""

    media_type = LINKED_DATA
    format = "jsonld"


class LinkedDataView(APIView):
    permission_classes = [AllowAny]
    renderer_classes = [JSONLDRenderer, renderers.JSONRenderer]


class Catalog(LinkedDataView):
    """Every dataset offered for data altruism, with how to reach it and the policies it is offered under."""

    @extend_schema(
        responses={
            (200, LINKED_DATA): OpenApiResponse(OpenApiTypes.OBJECT, description="DCAT-AP 3.0 catalogue"),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="the same, as JSON"),
        }
    )
    def get(self, request: Request) -> Response:
        return Response(dcat.catalog(policy.datasets_visible_to(request.user)))


class AgreementPolicy(LinkedDataView):
    """One agreement version as an ODRL 2.2 policy; drafts only to their holder and the operators."""

    @extend_schema(
        responses={
            (200, LINKED_DATA): OpenApiResponse(OpenApiTypes.OBJECT, description="ODRL 2.2 Offer"),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="the same, as JSON"),
        }
    )
    def get(self, request: Request, agreement_id: uuid.UUID) -> Response:
        visible = policy.agreements_visible_to(request.user).select_related("holder", "predecessor")
        agreement = visible.filter(pk=agreement_id).first()
        if agreement is None:
            raise NotFound("No such agreement.")
        return Response(odrl.policy(agreement))
