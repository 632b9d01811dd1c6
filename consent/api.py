"""The consent API: holders issue link codes and publish modules; citizens manage their consents."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker import policy
from broker.api_base import PortalSessionAuthentication, acting_user, calling_organisation
from broker.errors import Forbidden, NotFound
from broker.oauth.tokens import Caller
from broker.policy import OrgAction
from consent import accounts, export, kantara, receipts, rights, selectors, services
from consent.models import ConsentModule, ConsentRecord
from consent.policy import IsCitizen

# --- holders -------------------------------------------------------------------------------------


class LinkCodeRequest(serializers.Serializer[Any]):
    subject_ref = serializers.CharField(max_length=128, help_text="your own reference for the customer")


class LinkCodeIssued(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="give it to your customer; shown this once")
    expires_at = serializers.DateTimeField()


class LinkCodes(APIView):
    """A holder issues a one-time code for one of its customers to link their Tiers account."""

    @extend_schema(request=LinkCodeRequest, responses={201: LinkCodeIssued})
    def post(self, request: Request) -> Response:
        holder = calling_organisation(request)
        policy.require(request.user, OrgAction.ISSUE_LINK_CODES, holder)
        wanted = LinkCodeRequest(data=request.data)
        wanted.is_valid(raise_exception=True)
        link_code, code = services.link_code_issue(actor=_actor(request), holder=holder, **wanted.validated_data)
        return Response({"code": code, "expires_at": link_code.expires_at}, status=status.HTTP_201_CREATED)


def _actor(request: Request) -> Any:
    """Who acted, for the audit entry: the person, or the organisation's client."""
    return request.auth.client if isinstance(request.auth, Caller) else acting_user(request)


class ModuleSerializer(serializers.ModelSerializer[ConsentModule]):
    holder = serializers.CharField(source="holder.slug", read_only=True)

    class Meta:
        model = ConsentModule
        fields = [
            "id", "holder", "slug", "version", "title_en", "title_fr", "notice_en", "notice_fr", "risks_en",
            "risks_fr", "data_categories", "purposes", "recipient_categories", "duration_days", "jurisdiction",
            "notice_hash", "published_at",
        ]  # fmt: skip
        read_only_fields = ["id", "holder", "version", "notice_hash", "published_at"]


class ModuleContent(serializers.Serializer[Any]):
    slug = serializers.SlugField(max_length=64)
    title_en = serializers.CharField(max_length=200)
    title_fr = serializers.CharField(max_length=200)
    notice_en = serializers.CharField(max_length=10_000)
    notice_fr = serializers.CharField(max_length=10_000)
    risks_en = serializers.CharField(max_length=5_000, required=False, default="")
    risks_fr = serializers.CharField(max_length=5_000, required=False, default="")
    data_categories = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1, max_length=50)
    purposes = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1, max_length=20)
    recipient_categories = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1)
    duration_days = serializers.IntegerField(min_value=1, max_value=3650)
    jurisdiction = serializers.CharField(max_length=8, default="EU")


class ConsentModules(APIView):
    """Every module's current version, for anyone to read; holders publish new ones."""

    def get_permissions(self) -> list[Any]:
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(responses=ModuleSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ModuleSerializer(selectors.current_modules(), many=True).data)

    @extend_schema(request=ModuleContent, responses={201: ModuleSerializer})
    def post(self, request: Request) -> Response:
        holder = calling_organisation(request)
        policy.require(request.user, OrgAction.PUBLISH_CONSENT_MODULES, holder)
        content = ModuleContent(data=request.data)
        content.is_valid(raise_exception=True)
        fields = dict(content.validated_data)
        slug = fields.pop("slug")
        module = services.module_publish(actor=_actor(request), holder=holder, slug=slug, content=fields)
        return Response(ModuleSerializer(module).data, status=status.HTTP_201_CREATED)


# --- citizens ------------------------------------------------------------------------------------


class ConsentSerializer(serializers.ModelSerializer[ConsentRecord]):
    holder = serializers.CharField(source="holder.slug")
    holder_name = serializers.CharField(source="holder.name")
    module = serializers.CharField(source="module.slug")
    module_version = serializers.IntegerField(source="module.version")
    purposes = serializers.SerializerMethodField()
    events = serializers.SerializerMethodField()

    class Meta:
        model = ConsentRecord
        fields = [
            "id", "state", "holder", "holder_name", "module", "module_version", "purpose", "purposes",
            "given_at", "expires_at", "updated_at", "events",
        ]  # fmt: skip

    def get_purposes(self, record: ConsentRecord) -> list[str]:
        return [record.purpose]

    def get_events(self, record: ConsentRecord) -> list[dict[str, Any]]:
        return [{"event": e.event, "state": e.state, "at": e.at} for e in record.events.all()]


class GiveConsent(serializers.Serializer[Any]):
    module = serializers.IntegerField(help_text="the id of the module version shown to the citizen")
    purposes = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1, max_length=20)


class CitizenView(APIView):
    # A citizen's own data: a person's session only (with CSRF), never an organisation's token.
    authentication_classes = [PortalSessionAuthentication]
    permission_classes = [IsCitizen]


class MyConsents(CitizenView):
    """The citizen's consents; POST gives consent to some purposes of a module."""

    @extend_schema(responses=ConsentSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ConsentSerializer(selectors.consents_of(acting_user(request)), many=True).data)

    @extend_schema(request=GiveConsent, responses={201: ConsentSerializer(many=True)})
    def post(self, request: Request) -> Response:
        given = GiveConsent(data=request.data)
        given.is_valid(raise_exception=True)
        citizen = acting_user(request)
        module = selectors.modules_for(citizen).filter(pk=given.validated_data["module"]).first()
        if module is None:
            raise NotFound("No such module among your holders' current modules.")
        records = services.consent_give(citizen=citizen, module=module, purposes=given.validated_data["purposes"])
        return Response(ConsentSerializer(records, many=True).data, status=status.HTTP_201_CREATED)


class MyConsent(CitizenView):
    """One of the citizen's consents, with its history."""

    @extend_schema(responses=ConsentSerializer)
    def get(self, request: Request, consent_id: str) -> Response:
        return Response(ConsentSerializer(selectors.consent_of(acting_user(request), consent_id)).data)


class ConsentAction(CitizenView):
    """Change one consent with an empty POST; answers the updated consent."""

    change: Any = None

    @extend_schema(request=None, responses=ConsentSerializer)
    def post(self, request: Request, consent_id: str) -> Response:
        citizen = acting_user(request)
        record = self.change(citizen=citizen, record=selectors.consent_of(citizen, consent_id))
        return Response(ConsentSerializer(selectors.consent_of(citizen, record.pk)).data)


class Withdraw(ConsentAction):
    """Withdraw: as easy as giving (GDPR Art. 7(3)), effective for the next read."""

    change = staticmethod(services.consent_withdraw)


class Pause(ConsentAction):
    """Pause: no use of the data until resumed."""

    change = staticmethod(services.consent_pause)


class Resume(ConsentAction):
    """Resume a paused consent."""

    change = staticmethod(services.consent_resume)


class Renew(ConsentAction):
    """Renew for another full duration, on the same module version."""

    change = staticmethod(services.consent_renew)


class Receipt(CitizenView):
    """The consent's latest signed receipt, a compact JWS anyone can verify against /oauth/jwks."""

    @extend_schema(responses={(200, receipts.MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request: Request, consent_id: str) -> HttpResponse:
        record = selectors.consent_of(acting_user(request), consent_id)
        event = record.events.order_by("-at", "-pk").first()
        if event is None:
            raise NotFound("This consent has no receipt yet.")
        response = HttpResponse(event.receipt, content_type=receipts.MEDIA_TYPE)
        response["Content-Disposition"] = f'attachment; filename="consent-{record.id}-receipt.jws"'
        return response


# The Kantara receipt as the schema shows it, in the specification's own (camelCase) field names.


class KantaraAddress(serializers.Serializer[Any]):
    streetAddress = serializers.CharField(required=False)
    addressCountry = serializers.CharField(required=False)


class KantaraController(serializers.Serializer[Any]):
    piiController = serializers.CharField()
    onBehalf = serializers.BooleanField(help_text="true for Tiers, which records the consent for the holder")
    contact = serializers.CharField()
    address = KantaraAddress(help_text="a schema.org PostalAddress, as far as Tiers knows it")
    email = serializers.CharField(allow_blank=True)
    phone = serializers.CharField(allow_blank=True, help_text="always empty: Tiers records no telephone number")
    piiControllerUrl = serializers.CharField(required=False)


class KantaraPurpose(serializers.Serializer[Any]):
    purpose = serializers.CharField(help_text="the purpose in plain words")
    purposeCategory = serializers.ListField(child=serializers.CharField(), help_text="the DPV purpose term")
    consentType = serializers.CharField(help_text="EXPLICIT: the citizen ticked this purpose")
    piiCategory = serializers.ListField(child=serializers.CharField(), help_text="DPV personal data terms")
    primaryPurpose = serializers.BooleanField()
    termination = serializers.CharField()
    thirdPartyDisclosure = serializers.BooleanField()
    thirdPartyName = serializers.CharField(required=False, help_text="the kinds of recipients the module names")


class KantaraService(serializers.Serializer[Any]):
    service = serializers.CharField(help_text="the module's title")
    purposes = KantaraPurpose(many=True)


class KantaraReceipt(serializers.Serializer[Any]):
    version = serializers.CharField(help_text="KI-CR-v1.1.0")
    jurisdiction = serializers.CharField()
    consentTimestamp = serializers.IntegerField(help_text="seconds since 1970-01-01T00:00:00Z")
    collectionMethod = serializers.CharField()
    consentReceiptID = serializers.UUIDField()
    language = serializers.CharField(help_text="ISO 639-1")
    piiPrincipalId = serializers.CharField(help_text="the citizen, as Tiers alone can resolve")
    piiControllers = KantaraController(many=True)
    policyUrl = serializers.CharField(help_text="the consent form of this module version")
    services = KantaraService(many=True)
    sensitive = serializers.BooleanField(help_text="a special category of personal data (GDPR Art. 9)")
    spiCat = serializers.ListField(child=serializers.CharField())


class Kantara(CitizenView):
    """The consent as a Kantara Consent Receipt v1.1, about the transaction that gave or last renewed it.

    Kantara v1.1 has no field for a later pause or withdrawal: the consent itself and its signed
    receipts say where it stands.
    """

    @extend_schema(responses=KantaraReceipt)
    def get(self, request: Request, consent_id: str) -> Response:
        record = selectors.consent_of(acting_user(request), consent_id)
        event = kantara.giving_event(record)
        if event is None:
            raise NotFound("This consent has no receipt yet.")
        return Response(kantara.consent_receipt(record, event))


class Export(CitizenView):
    """Everything Tiers holds about the citizen, as JSON (GDPR Art. 15 and 20)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        response = Response(export.citizen_export(acting_user(request)))
        response["Content-Disposition"] = f'attachment; filename="{export.filename()}"'
        return response


class ErasureConfirmation(serializers.Serializer[Any]):
    password = serializers.CharField(
        max_length=4096,
        required=False,
        default="",
        allow_blank=True,
        trim_whitespace=False,
        help_text="the account's password, given again; an account without one (it logs in at an identity "
        "provider) sends none, within 10 minutes of logging in there",
    )


class Erased(serializers.Serializer[Any]):
    erased_audit_entries = serializers.IntegerField(help_text="how many bodies of log entries about you were erased")


class MyErasure(CitizenView):
    """Erase the citizen's account (GDPR Art. 17) once they give their password again, and log them out.

    Every consent is withdrawn (the organisations are told), links and profile go, the bodies of the log
    entries about them are erased while the log still verifies. A wrong password is a 403 and changes nothing.
    """

    @extend_schema(
        request=ErasureConfirmation,
        responses={200: OpenApiResponse(Erased, description="The account is erased and the session is over.")},
    )
    def post(self, request: Request) -> Response:
        given = ErasureConfirmation(data=request.data)
        given.is_valid(raise_exception=True)
        citizen = acting_user(request)
        outcome = accounts.identity_confirm(citizen, given.validated_data["password"], request.session)
        if outcome is accounts.Confirmation.TOO_MANY_ATTEMPTS:
            raise exceptions.Throttled(wait=accounts.ERASURE_WINDOW_SECONDS)
        if outcome is accounts.Confirmation.WRONG_PASSWORD:
            raise Forbidden("This is not the account's password. Nothing was erased.")
        if outcome is accounts.Confirmation.LOG_IN_AGAIN:
            minutes = accounts.PROVIDER_LOGIN_FRESH_SECONDS // 60
            raise Forbidden(f"Log in again at your identity provider, then ask within {minutes} minutes.")
        erased = accounts.account_erase(request._request, citizen)
        return Response({"erased_audit_entries": erased})


# --- rights requests -------------------------------------------------------------------------------


class RecipientSerializer(serializers.Serializer[Any]):
    organisation = serializers.CharField(source="organisation.slug")
    organisation_name = serializers.CharField(source="organisation.name")
    state = serializers.CharField()
    status = serializers.SerializerMethodField(help_text="state, or not_delivered once its delivery is dead")
    delivery_state = serializers.CharField(source="delivery.state", default=None, allow_null=True)
    delivered_at = serializers.DateTimeField(source="delivery.delivered_at", default=None, allow_null=True)

    def get_status(self, recipient: Any) -> str:
        return rights.recipient_status(recipient)


class RightsRequestSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    details = serializers.CharField()
    created_at = serializers.DateTimeField()
    recipients = RecipientSerializer(many=True, source="recipients.all")


class RightsRequestFiling(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=rights.RightsRequest.Kind.choices)
    details = serializers.CharField(max_length=5000, required=False, default="", allow_blank=True)


class MyRights(CitizenView):
    """The citizen's rights requests with each recipient's status; POST files one (GDPR Art. 16, 17, 21)."""

    @extend_schema(responses=RightsRequestSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(RightsRequestSerializer(rights.requests_of(acting_user(request)), many=True).data)

    @extend_schema(request=RightsRequestFiling, responses={201: RightsRequestSerializer})
    def post(self, request: Request) -> Response:
        wanted = RightsRequestFiling(data=request.data)
        wanted.is_valid(raise_exception=True)
        citizen = acting_user(request)
        filed = services.rights_request_file(citizen=citizen, **wanted.validated_data)
        body = RightsRequestSerializer(rights.request_of(citizen, filed.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


class MyRight(CitizenView):
    """One of the citizen's rights requests."""

    @extend_schema(responses=RightsRequestSerializer)
    def get(self, request: Request, request_id: str) -> Response:
        found = rights.request_of(acting_user(request), request_id)
        if found is None:
            raise NotFound("No such request.")
        return Response(RightsRequestSerializer(found).data)
