"""The trust core's API: the public register and the caller's own organisation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker import policy, selectors, services
from broker.api_base import CursorPagination, acting_user, calling_organisation
from broker.errors import InvalidInput
from broker.models import Membership, Organisation
from broker.policy import OrgAction


class OrganisationPublicSerializer(serializers.ModelSerializer[Organisation]):
    class Meta:
        model = Organisation
        fields = [
            "slug",
            "name",
            "legal_identifier",
            "identifier_scheme",
            "country",
            "kind",
            "recipient_category",
            "verified_at",
        ]


class MemberSerializer(serializers.ModelSerializer[Membership]):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role"]


class OrganisationPrivateSerializer(OrganisationPublicSerializer):
    members = serializers.SerializerMethodField()

    class Meta(OrganisationPublicSerializer.Meta):
        fields = [*OrganisationPublicSerializer.Meta.fields, "contact_email", "verification_state", "members"]

    def get_members(self, organisation: Organisation) -> list[dict[str, Any]]:
        return MemberSerializer(selectors.members_of(organisation), many=True).data  # type: ignore[return-value]


class OrganisationUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200, required=False)
    contact_email = serializers.EmailField(required=False, allow_blank=True)


class BySlug(CursorPagination):
    ordering = "slug"


class OrganisationApplication(serializers.Serializer[Any]):
    """What a person applying for their organisation gives; the service checks the rules."""

    slug = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    legal_identifier = serializers.CharField(max_length=64)
    identifier_scheme = serializers.ChoiceField(choices=Organisation.IdentifierScheme.choices)
    country = serializers.CharField(max_length=2, min_length=2)
    kind = serializers.ChoiceField(choices=Organisation.Kind.choices)
    recipient_category = serializers.CharField(max_length=16, required=False, default="", allow_blank=True)
    contact_email = serializers.EmailField()


class OrganisationAppliedSerializer(OrganisationPublicSerializer):
    class Meta(OrganisationPublicSerializer.Meta):
        fields = [*OrganisationPublicSerializer.Meta.fields, "contact_email", "verification_state"]


def invalid_input(errors: Any) -> InvalidInput:
    """A serializer's errors as the 422 problem every creating API answers for bad input."""
    flat = [
        {"field": field, "detail": str(detail)}
        for field, details in (errors.items() if isinstance(errors, dict) else [("", errors)])
        for detail in (details if isinstance(details, list) else [details])
    ]
    return InvalidInput("See `errors` for what to correct.", errors=flat)


class OrganisationList(generics.ListAPIView[Organisation]):
    """The public register of verified organisations; a logged-in person applies for theirs with POST."""

    serializer_class = OrganisationPublicSerializer
    queryset = selectors.organisation_public_list()
    pagination_class = BySlug

    def get_permissions(self) -> list[BasePermission]:
        return [IsAuthenticated()] if self.request.method == "POST" else [AllowAny()]

    @extend_schema(request=OrganisationApplication, responses={201: OrganisationAppliedSerializer})
    def post(self, request: Request) -> Response:
        """Apply: the organisation waits for an operator's verification, with the caller as its admin."""
        application = OrganisationApplication(data=request.data)
        if not application.is_valid():
            raise invalid_input(application.errors)
        organisation = services.organisation_apply(actor=acting_user(request), **application.validated_data)
        return Response(OrganisationAppliedSerializer(organisation).data, status=status.HTTP_201_CREATED)


ORGANISATION_PARAM = OpenApiParameter(
    "organisation", str, description="Slug of the organisation, for members of several."
)


class OrganisationMe(APIView):
    """The calling organisation, with what only its members see."""

    @extend_schema(parameters=[ORGANISATION_PARAM], responses=OrganisationPrivateSerializer)
    def get(self, request: Request) -> Response:
        organisation = calling_organisation(request)
        policy.require(request.user, OrgAction.VIEW_PRIVATE, organisation)
        return Response(OrganisationPrivateSerializer(organisation).data)

    @extend_schema(
        parameters=[ORGANISATION_PARAM],
        request=OrganisationUpdateSerializer,
        responses=OrganisationPrivateSerializer,
    )
    def patch(self, request: Request) -> Response:
        organisation = calling_organisation(request)
        changes = OrganisationUpdateSerializer(data=request.data)
        changes.is_valid(raise_exception=True)
        organisation = services.organisation_update_profile(
            actor=acting_user(request), organisation=organisation, **changes.validated_data
        )
        return Response(OrganisationPrivateSerializer(organisation).data)
