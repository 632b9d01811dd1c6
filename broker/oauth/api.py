"""An organisation's admins manage its OAuth clients here (session login; clients cannot)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker import policy, selectors
from broker.api_base import PortalSessionAuthentication, WebUrlField, acting_user
from broker.errors import NotFound
from broker.oauth import services
from broker.oauth.models import OAuthClient
from broker.policy import OrgAction

# A response that carries a secret must not be kept by any cache.
NO_STORE = {"Cache-Control": "no-store"}


class ClientSerializer(serializers.ModelSerializer[OAuthClient]):
    organisation: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = OAuthClient
        fields = [
            "client_id",
            "name",
            "organisation",
            "auth_method",
            "secret_hint",
            "jwks",
            "jwks_uri",
            "scopes",
            "dpop_bound_access_tokens",
            "created_at",
            "disabled_at",
            "active",
        ]


class ClientCreatedSerializer(ClientSerializer):
    client_secret = serializers.CharField(read_only=True, help_text="shown this once; Tiers keeps only its hash")

    class Meta(ClientSerializer.Meta):
        fields = [*ClientSerializer.Meta.fields, "client_secret"]


class ClientRegistration(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    auth_method = serializers.ChoiceField(choices=OAuthClient.AuthMethod.choices)
    scopes = serializers.ListField(child=serializers.CharField(max_length=40), max_length=10, default=["organisation"])
    jwks = serializers.DictField(required=False, help_text="a JWK Set of public keys, for private_key_jwt clients")
    jwks_uri = WebUrlField(required=False, allow_blank=True, default="")
    dpop_bound_access_tokens = serializers.BooleanField(default=False)


class ClientRotation(serializers.Serializer[Any]):
    jwks = serializers.DictField(required=False, help_text="new public keys (a JWK Set), for private_key_jwt clients")


class HumanOnly(APIView):
    # A client may not register or rotate clients: only a person, with a session.
    authentication_classes = [PortalSessionAuthentication]

    def client_of_caller(self, request: Request, client_id: str) -> OAuthClient:
        client = OAuthClient.objects.select_related("organisation").filter(client_id=client_id).first()
        if client is None or not policy.can(request.user, OrgAction.VIEW_PRIVATE, client.organisation):
            raise NotFound("No such client.")
        return client


class ClientList(HumanOnly):
    """The calling organisation's clients; admins register new ones."""

    @extend_schema(responses=ClientSerializer(many=True))
    def get(self, request: Request) -> Response:
        organisation = selectors.organisation_for_caller(request.user, request.query_params.get("organisation"))
        policy.require(request.user, OrgAction.VIEW_PRIVATE, organisation)
        clients = organisation.oauth_clients.order_by("name")
        return Response(ClientSerializer(clients, many=True).data)

    @extend_schema(request=ClientRegistration, responses={201: ClientCreatedSerializer})
    def post(self, request: Request) -> Response:
        organisation = selectors.organisation_for_caller(request.user, request.query_params.get("organisation"))
        registration = ClientRegistration(data=request.data)
        registration.is_valid(raise_exception=True)
        client, secret = services.client_register(
            actor=acting_user(request), organisation=organisation, **registration.validated_data
        )
        body = ClientSerializer(client).data | {"client_secret": secret}
        return Response(body, status=status.HTTP_201_CREATED, headers=NO_STORE)


class ClientRotate(HumanOnly):
    """A new secret (shown once) or new public keys; the old credentials stop working at once."""

    @extend_schema(request=ClientRotation, responses=ClientCreatedSerializer)
    def post(self, request: Request, client_id: str) -> Response:
        rotation = ClientRotation(data=request.data)
        rotation.is_valid(raise_exception=True)
        client, secret = services.client_rotate_credentials(
            actor=acting_user(request), client=self.client_of_caller(request, client_id), **rotation.validated_data
        )
        return Response(ClientSerializer(client).data | {"client_secret": secret}, headers=NO_STORE)


class ClientDisable(HumanOnly):
    """Disable a client: every token it holds is refused from the next request on."""

    @extend_schema(request=None, responses=ClientSerializer)
    def post(self, request: Request, client_id: str) -> Response:
        client = services.client_disable(actor=acting_user(request), client=self.client_of_caller(request, client_id))
        return Response(ClientSerializer(client).data)
