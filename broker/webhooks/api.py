"""The webhooks API: endpoints, deliveries and replays, deletion attestations and acknowledgements."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker import policy
from broker.api_base import CursorPagination, by_id, calling_organisation
from broker.errors import InvalidInput, NotFound
from broker.models import Organisation, User, WebhookDelivery, WebhookEndpoint
from broker.oauth.tokens import Caller
from broker.policy import OrgAction
from broker.webhooks import services
from sharing.models import Grant

SLUG = re.compile(r"[a-z][a-z0-9-]{0,63}")


class EndpointSerializer(serializers.ModelSerializer[WebhookEndpoint]):
    organisation = serializers.CharField(source="organisation.slug", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "organisation", "url", "enabled", "created_at", "created_by", "disabled_at"]
        read_only_fields = fields


class EndpointRegistration(serializers.Serializer[Any]):
    url = serializers.CharField(max_length=500, help_text="https://… (http://127.0.0.1 only where allowed)")


class DeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    organisation = serializers.CharField(source="endpoint.organisation.slug", read_only=True)
    url = serializers.CharField(source="endpoint.url", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "organisation", "endpoint", "url", "event_type", "payload", "occurred_at", "state", "attempts",
            "next_attempt_at", "created_at", "delivered_at", "replayed_at", "last_status", "last_error",
        ]  # fmt: skip
        read_only_fields = fields


class NewestFirst(CursorPagination):
    ordering = "-created_at"


def _organisation(request: Request) -> Organisation:
    """The caller's organisation (its client's, or the one the member names), checked for MANAGE_WEBHOOKS."""
    organisation = calling_organisation(request)
    policy.require(request.user, OrgAction.MANAGE_WEBHOOKS, organisation)
    return organisation


ORGANISATION = OpenApiParameter("organisation", str, description="Slug of the organisation, for members of several.")


class EndpointList(generics.ListAPIView[WebhookEndpoint]):
    """The organisation's webhook endpoints; POST registers one."""

    serializer_class = EndpointSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return WebhookEndpoint.objects.filter(organisation=_organisation(self.request)).select_related("organisation")

    @extend_schema(parameters=[ORGANISATION], request=EndpointRegistration, responses={201: EndpointSerializer})
    def post(self, request: Request) -> Response:
        wanted = EndpointRegistration(data=request.data)
        wanted.is_valid(raise_exception=True)
        endpoint = services.endpoint_register(
            by=request.user, organisation=_organisation(request), url=wanted.validated_data["url"]
        )
        return Response(EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)


def _endpoint(request: Request, endpoint_id: str) -> WebhookEndpoint:
    endpoint = by_id(WebhookEndpoint.objects.select_related("organisation"), endpoint_id)
    if endpoint is None or not policy.can(request.user, OrgAction.MANAGE_WEBHOOKS, endpoint.organisation):
        raise NotFound("No such webhook endpoint.")
    return endpoint


class EndpointDisable(APIView):
    """Stop sending to this endpoint."""

    @extend_schema(request=None, responses=EndpointSerializer)
    def post(self, request: Request, endpoint_id: str) -> Response:
        endpoint = services.endpoint_disable(by=request.user, endpoint=_endpoint(request, endpoint_id))
        return Response(EndpointSerializer(endpoint).data)


def _is_operator(request: Request) -> bool:
    return not isinstance(request.auth, Caller) and isinstance(request.user, User) and request.user.is_operator


class DeliveryList(generics.ListAPIView[WebhookDelivery]):
    """The organisation's deliveries, newest first; operators see every organisation's (`?state=dead`)."""

    serializer_class = DeliverySerializer
    pagination_class = NewestFirst

    @extend_schema(
        parameters=[
            ORGANISATION,
            OpenApiParameter("state", str, enum=WebhookDelivery.State.values),
            OpenApiParameter("event_type", str),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        params = self.request.query_params
        if _is_operator(self.request) and not params.get("organisation"):
            organisation = None
        else:
            organisation = _organisation(self.request)
        deliveries: QuerySet[WebhookDelivery] = services.deliveries_visible_to(self.request.user, organisation)
        state = params.get("state")
        if state:
            if state not in WebhookDelivery.State.values:
                raise InvalidInput(f"state is one of: {', '.join(WebhookDelivery.State.values)}.")
            deliveries = deliveries.filter(state=state)
        event_type = params.get("event_type")
        if event_type:
            if not SLUG.fullmatch(event_type):
                raise InvalidInput("event_type is an event name such as consent-withdrawn.")
            deliveries = deliveries.filter(event_type=event_type)
        return deliveries


def _delivery(request: Request, delivery_id: str) -> WebhookDelivery:
    delivery = by_id(WebhookDelivery.objects.select_related("endpoint__organisation"), delivery_id)
    if delivery is None or not policy.can(request.user, OrgAction.MANAGE_WEBHOOKS, delivery.endpoint.organisation):
        raise NotFound("No such delivery.")
    return delivery


class DeliveryReplay(APIView):
    """Queue a dead delivery again, with the same jti."""

    @extend_schema(request=None, responses=DeliverySerializer)
    def post(self, request: Request, delivery_id: str) -> Response:
        delivery = services.delivery_replay(by=request.user, delivery=_delivery(request, delivery_id))
        return Response(DeliverySerializer(delivery).data)


class Attestation(serializers.Serializer[Any]):
    event = serializers.CharField(max_length=64, help_text="the jti of the SET that asked for the deletion")
    subject_pseudonym = serializers.CharField(max_length=64)


class Attested(serializers.Serializer[Any]):
    grant = serializers.CharField()
    event = serializers.CharField()
    attested = serializers.BooleanField()


class DeletionAttestation(APIView):
    """The grant's data user attests it deleted a subject's data, as a withdrawal or erasure SET asked."""

    @extend_schema(request=Attestation, responses={201: Attested})
    def post(self, request: Request, grant_id: str) -> Response:
        grant = by_id(Grant.objects.select_related("organisation"), grant_id)
        if grant is None or not policy.can(request.user, OrgAction.VIEW_PRIVATE, grant.organisation):
            raise NotFound("No such grant.")
        wanted = Attestation(data=request.data)
        wanted.is_valid(raise_exception=True)
        told = services.deletion_attest(by=request.user, grant=grant, **wanted.validated_data)
        body = {"grant": str(grant.pk), "event": str(told.pk), "attested": True}
        return Response(body, status=status.HTTP_201_CREATED)


class Acknowledgement(serializers.Serializer[Any]):
    event = serializers.CharField(max_length=64, help_text="the jti of the rights-* SET received")


class Acknowledged(serializers.Serializer[Any]):
    request = serializers.CharField()
    state = serializers.CharField()


class RightsAcknowledge(APIView):
    """The organisation confirms it received a forwarded rights request; the citizen sees it."""

    @extend_schema(parameters=[ORGANISATION], request=Acknowledgement, responses=Acknowledged)
    def post(self, request: Request) -> Response:
        wanted = Acknowledgement(data=request.data)
        wanted.is_valid(raise_exception=True)
        recipient = services.rights_acknowledge(
            by=request.user, organisation=_organisation(request), event=wanted.validated_data["event"]
        )
        return Response({"request": str(recipient.request_id), "state": recipient.state})
