"""The sharing API: datasets and uploads, agreements, access requests, grants, delivery, decisions.

Views parse and answer; every rule lives in sharing.services, sharing.ingest,
sharing.delivery and, for who may do what, sharing.policy.
"""

from __future__ import annotations

import io
import re
from typing import IO, Any, cast

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker.api_base import PortalSessionAuthentication, WebUrlField, acting_user, by_id, calling_organisation
from broker.errors import InvalidInput, NotFound, TiersError
from broker.oauth.authentication import AccessTokenAuthentication
from broker.oauth.tokens import ClientPrincipal
from consent.policy import IsCitizen
from sharing import delivery, ingest, policy, selectors, services
from sharing.models import (
    AccessRequest,
    Agreement,
    Dataset,
    DeliverySubject,
    Grant,
    ProcessingResult,
    Upload,
    UploadError,
)

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")


# --- datasets ------------------------------------------------------------------------------------


class DatasetSerializer(serializers.ModelSerializer[Dataset]):
    holder = serializers.CharField(source="holder.slug", read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id", "holder", "slug", "title", "description", "keywords", "mode", "api_base_url", "table_schema",
            "subject_key_field", "personal_fields", "data_categories", "state", "created_at", "withdrawn_at",
        ]  # fmt: skip
        read_only_fields = ["id", "holder", "state", "created_at", "withdrawn_at"]


class DatasetRegistration(serializers.Serializer[Any]):
    slug = serializers.SlugField(max_length=64)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10_000, required=False, default="")
    keywords = serializers.ListField(child=serializers.CharField(max_length=64), max_length=30, default=list)
    mode = serializers.ChoiceField(choices=Dataset.Mode.choices)
    api_base_url = WebUrlField(required=False, default="")
    table_schema = serializers.DictField(help_text="a Frictionless Table Schema")
    subject_key_field = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    personal_fields = serializers.ListField(child=serializers.CharField(max_length=100), default=list)
    data_categories = serializers.ListField(child=serializers.CharField(max_length=100), default=list)


class DatasetList(generics.ListAPIView[Dataset]):
    """Datasets: public ones of verified holders, and the caller's own."""

    serializer_class = DatasetSerializer

    def get_queryset(self) -> QuerySet[Dataset]:
        datasets = policy.datasets_visible_to(self.request.user).select_related("holder")
        holder = self.request.query_params.get("holder")
        if holder and not SLUG.fullmatch(holder):
            raise InvalidInput("holder is an organisation's slug.")
        return datasets.filter(holder__slug=holder) if holder else datasets

    @extend_schema(request=DatasetRegistration, responses={201: DatasetSerializer})
    def post(self, request: Request) -> Response:
        wanted = DatasetRegistration(data=request.data)
        wanted.is_valid(raise_exception=True)
        dataset = services.dataset_register(
            by=request.user, holder=calling_organisation(request), **wanted.validated_data
        )
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


def _dataset(request: Request, dataset_id: Any) -> Dataset:
    dataset = by_id(policy.datasets_visible_to(request.user).select_related("holder"), dataset_id)
    if dataset is None:
        raise NotFound("No such dataset.")
    return dataset


class DatasetDetail(APIView):
    @extend_schema(responses={200: DatasetSerializer})
    def get(self, request: Request, dataset_id: str) -> Response:
        return Response(DatasetSerializer(_dataset(request, dataset_id)).data)


class Reason(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500)


class DatasetWithdraw(APIView):
    """Stop offering the dataset; its grants end as each agreement says."""

    @extend_schema(request=Reason, responses={200: DatasetSerializer})
    def post(self, request: Request, dataset_id: str) -> Response:
        wanted = Reason(data=request.data)
        wanted.is_valid(raise_exception=True)
        dataset = services.dataset_withdraw(
            by=request.user, dataset=_dataset(request, dataset_id), reason=wanted.validated_data["reason"]
        )
        return Response(DatasetSerializer(dataset).data)


class SubjectRefs(serializers.Serializer[Any]):
    subject_refs = serializers.ListField(child=serializers.CharField(max_length=128), min_length=1, max_length=10_000)


class RecordsDelete(APIView):
    """Delete the records of some subjects from a hosted dataset."""

    @extend_schema(request=SubjectRefs, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, dataset_id: str) -> Response:
        wanted = SubjectRefs(data=request.data)
        wanted.is_valid(raise_exception=True)
        deleted = services.records_delete(
            by=request.user, dataset=_dataset(request, dataset_id), subject_refs=wanted.validated_data["subject_refs"]
        )
        return Response({"deleted": deleted})


class KeyRotate(APIView):
    """Start a new data key; records move to it in the background while reads go on."""

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request, dataset_id: str) -> Response:
        version = services.data_key_rotate(by=request.user, dataset=_dataset(request, dataset_id))
        return Response({"key_version": version}, status=status.HTTP_202_ACCEPTED)


class UploadErrorSerializer(serializers.ModelSerializer[UploadError]):
    class Meta:
        model = UploadError
        fields = ["line", "field", "reason"]


class UploadSerializer(serializers.ModelSerializer[Upload]):
    class Meta:
        model = Upload
        fields = [
            "id", "format", "on_error", "replace", "size", "sha256", "state", "rows_total", "rows_loaded",
            "rows_rejected", "failure", "created_at", "finished_at",
        ]  # fmt: skip


class UploadDetailSerializer(UploadSerializer):
    # DRF's metaclass takes declared fields off the class, so this does not shadow Serializer.errors.
    errors = serializers.SerializerMethodField(help_text="the first 1,000 rejected lines")  # type: ignore[assignment]

    class Meta(UploadSerializer.Meta):
        fields = [*UploadSerializer.Meta.fields, "errors"]

    def get_errors(self, upload: Upload) -> list[dict[str, Any]]:
        return UploadErrorSerializer(upload.errors.all(), many=True).data  # type: ignore[return-value]


class BodyStream(BaseParser):
    """Hands the request body on unread, so that the upload is copied to disk in chunks."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream if stream is not None else io.BytesIO()


class CsvStream(BodyStream):
    media_type = "text/csv"


class JsonLinesStream(BodyStream):
    media_type = "application/x-ndjson"


class JsonLinesAltStream(BodyStream):
    media_type = "application/jsonl"


class Uploads(generics.ListAPIView[Upload]):
    """A hosted dataset's uploads. POST the file itself as the body (text/csv or application/x-ndjson)."""

    serializer_class = UploadSerializer
    parser_classes = [CsvStream, JsonLinesStream, JsonLinesAltStream]

    def get_queryset(self) -> QuerySet[Upload]:
        return policy.uploads_visible_to(self.request.user, _dataset(self.request, self.kwargs["dataset_id"]))

    @extend_schema(
        request={"text/csv": OpenApiTypes.BINARY, "application/x-ndjson": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("on_error", str, enum=Upload.OnError.values, description="default all_or_nothing"),
            OpenApiParameter("replace", bool, description="replace the dataset's records (default: add)"),
        ],
        responses={202: UploadSerializer},
    )
    def post(self, request: Request, dataset_id: str) -> Response:
        # The body is read in chunks straight from the request, never parsed as a whole.
        upload = ingest.upload_receive(
            by=request.user,
            dataset=_dataset(request, dataset_id),
            # An empty body never reaches the parser: DRF gives {} (refused below as an empty upload).
            body=cast(IO[bytes], request.data) if hasattr(request.data, "read") else io.BytesIO(),
            content_type=request.content_type,
            on_error=request.query_params.get("on_error", Upload.OnError.ALL_OR_NOTHING),
            replace=request.query_params.get("replace", "false").lower() in ("1", "true", "yes"),
        )
        upload.refresh_from_db()
        return Response(UploadSerializer(upload).data, status=status.HTTP_202_ACCEPTED)


class UploadDetail(APIView):
    @extend_schema(responses={200: UploadDetailSerializer})
    def get(self, request: Request, dataset_id: str, upload_id: str) -> Response:
        uploads = policy.uploads_visible_to(request.user, _dataset(request, dataset_id))
        upload = by_id(uploads, upload_id)
        if upload is None:
            raise NotFound("No such upload.")
        return Response(UploadDetailSerializer(upload).data)


# --- agreements ----------------------------------------------------------------------------------


class AgreementSerializer(serializers.ModelSerializer[Agreement]):
    holder = serializers.CharField(source="holder.slug", read_only=True)
    datasets = serializers.PrimaryKeyRelatedField[Dataset](many=True, read_only=True)
    predecessor = serializers.PrimaryKeyRelatedField[Agreement](read_only=True, allow_null=True)

    class Meta:
        model = Agreement
        fields = [
            "id", "holder", "series", "version", "predecessor", "predecessor_hash", "title", "datasets", "terms",
            "approval_mode", "valid_from", "valid_until", "content_hash", "state", "holder_signed_by",
            "holder_signed_at", "countersigned_by", "countersigned_at", "ended_at", "end_reason",
        ]  # fmt: skip


class Conditions(serializers.Serializer[Any]):
    no_reidentification = serializers.BooleanField(required=False)
    eu_processing_only = serializers.BooleanField(required=False)
    non_commercial = serializers.BooleanField(required=False)
    retention_days_max = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    grant_days_max = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    grants_on_termination = serializers.ChoiceField(choices=["end", "run_to_term"], required=False)
    deletion_on_withdrawal = serializers.BooleanField(required=False)


class AgreementProposal(serializers.Serializer[Any]):
    title = serializers.CharField(max_length=200)
    datasets = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=50)
    purposes = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1)
    recipient_categories = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1)
    consent_modules = serializers.ListField(child=serializers.SlugField(), default=list)
    conditions = Conditions(required=False, default=dict)
    approval_mode = serializers.ChoiceField(choices=Agreement.ApprovalMode.choices)
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField()


def _terms(request: Request, holder: Any) -> services.AgreementTerms:
    wanted = AgreementProposal(data=request.data)
    wanted.is_valid(raise_exception=True)
    data = dict(wanted.validated_data)
    ids = data.pop("datasets")
    datasets = list(Dataset.objects.filter(pk__in=ids, holder=holder))
    if len(datasets) != len(set(ids)):
        raise InvalidInput("Name your own datasets only.")
    return services.AgreementTerms(datasets=datasets, **data)


class AgreementList(generics.ListAPIView[Agreement]):
    """Agreements in force or ended are public; drafts, to their holder and the operators."""

    serializer_class = AgreementSerializer

    def get_queryset(self) -> QuerySet[Agreement]:
        agreements = policy.agreements_visible_to(self.request.user).select_related("holder")
        return agreements.prefetch_related("datasets")

    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(request=AgreementProposal, responses={201: AgreementSerializer})
    def post(self, request: Request) -> Response:
        holder = calling_organisation(request)
        agreement = services.agreement_propose(by=request.user, holder=holder, terms=_terms(request, holder))
        return Response(AgreementSerializer(agreement).data, status=status.HTTP_201_CREATED)


def _agreement(request: Request, agreement_id: Any) -> Agreement:
    found = policy.agreements_visible_to(request.user).select_related("holder")
    agreement = by_id(found, agreement_id)
    if agreement is None:
        raise NotFound("No such agreement.")
    return agreement


class AgreementDetail(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: AgreementSerializer})
    def get(self, request: Request, agreement_id: str) -> Response:
        return Response(AgreementSerializer(_agreement(request, agreement_id)).data)


class AgreementRevise(APIView):
    """Propose the next version of an agreement in force; it points to this one by hash."""

    @extend_schema(request=AgreementProposal, responses={201: AgreementSerializer})
    def post(self, request: Request, agreement_id: str) -> Response:
        current = _agreement(request, agreement_id)
        agreement = services.agreement_propose(
            by=request.user, holder=current.holder, terms=_terms(request, current.holder), predecessor=current
        )
        return Response(AgreementSerializer(agreement).data, status=status.HTTP_201_CREATED)


class Signature(serializers.Serializer[Any]):
    content_hash = serializers.RegexField(r"^[0-9a-f]{64}$", help_text="the content_hash of the version you read")


class SignatureView(APIView):
    """A party signs exactly the version whose content hash it read."""

    sign = staticmethod(services.agreement_sign)

    @extend_schema(request=Signature, responses={200: AgreementSerializer})
    def post(self, request: Request, agreement_id: str) -> Response:
        wanted = Signature(data=request.data)
        wanted.is_valid(raise_exception=True)
        agreement = self.sign(by=request.user, agreement=_agreement(request, agreement_id), **wanted.validated_data)
        return Response(AgreementSerializer(agreement).data)


class AgreementSign(SignatureView):
    """The holder signs the draft whose content hash it read."""


class AgreementCountersign(SignatureView):
    """An operator countersigns: the version comes into force."""

    sign = staticmethod(services.agreement_countersign)


class AgreementTerminate(APIView):
    @extend_schema(request=Reason, responses={200: AgreementSerializer})
    def post(self, request: Request, agreement_id: str) -> Response:
        wanted = Reason(data=request.data)
        wanted.is_valid(raise_exception=True)
        agreement = services.agreement_terminate(
            by=request.user, agreement=_agreement(request, agreement_id), reason=wanted.validated_data["reason"]
        )
        return Response(AgreementSerializer(agreement).data)


# --- access requests -----------------------------------------------------------------------------


class RequestItemSerializer(serializers.Serializer[Any]):
    dataset = serializers.UUIDField()
    # DRF's metaclass takes declared fields off the class, so this does not shadow Serializer.fields.
    fields = serializers.ListField(  # type: ignore[assignment]
        child=serializers.CharField(max_length=100), min_length=1, max_length=200
    )


class AccessRequestSerializer(serializers.ModelSerializer[AccessRequest]):
    organisation = serializers.CharField(source="organisation.slug", read_only=True)
    holder = serializers.CharField(source="agreement.holder.slug", read_only=True)
    grants = serializers.PrimaryKeyRelatedField[Grant](many=True, read_only=True)

    class Meta:
        model = AccessRequest
        fields = [
            "id", "organisation", "holder", "agreement", "items", "purpose", "recipient_category", "justification",
            "starts_at", "ends_at", "retention_days", "reviewer", "state", "coverage", "submitted_at",
            "decided_by", "decided_at", "decision_reason", "grants",
        ]  # fmt: skip


class AccessRequestSubmission(serializers.Serializer[Any]):
    agreement = serializers.UUIDField(required=False, help_text="default: the agreement in force on the datasets")
    items = serializers.ListField(child=RequestItemSerializer(), min_length=1, max_length=20)
    purpose = serializers.CharField(max_length=100, help_text="a W3C DPV purpose term")
    justification = serializers.CharField(max_length=5000)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    retention_days = serializers.IntegerField(min_value=0, max_value=3650)


class AccessRequestList(generics.ListAPIView[AccessRequest]):
    """Requests the caller made, or that concern the caller's data. `?state=pending` for an inbox."""

    serializer_class = AccessRequestSerializer

    def get_queryset(self) -> QuerySet[AccessRequest]:
        found = policy.requests_visible_to(self.request.user).select_related("organisation", "agreement__holder")
        state = self.request.query_params.get("state")
        if state and state not in AccessRequest.State.values:
            raise InvalidInput(f"state is one of: {', '.join(AccessRequest.State.values)}.")
        return found.filter(state=state) if state else found

    @extend_schema(request=AccessRequestSubmission, responses={201: AccessRequestSerializer})
    def post(self, request: Request) -> Response:
        wanted = AccessRequestSubmission(data=request.data)
        wanted.is_valid(raise_exception=True)
        data = dict(wanted.validated_data)
        raw_items = data.pop("items")
        ids = {item["dataset"] for item in raw_items}
        datasets = {str(d.pk): d for d in policy.datasets_visible_to(request.user).filter(pk__in=ids)}
        missing = [str(i) for i in ids if str(i) not in datasets]
        if missing:
            raise NotFound(f"No such dataset: {', '.join(missing)}.")
        agreement = None
        if "agreement" in data:
            agreement = _agreement(request, data.pop("agreement"))
        access_request = services.access_request_submit(
            by=request.user,
            organisation=calling_organisation(request),
            items=services.as_items(raw_items, datasets),
            agreement=agreement,
            **data,
        )
        return Response(AccessRequestSerializer(access_request).data, status=status.HTTP_201_CREATED)


def _request(request: Request, request_id: Any) -> AccessRequest:
    found = policy.requests_visible_to(request.user).select_related("organisation", "agreement__holder")
    access_request = by_id(found, request_id)
    if access_request is None:
        raise NotFound("No such access request.")
    return access_request


class AccessRequestDetail(APIView):
    @extend_schema(responses={200: AccessRequestSerializer})
    def get(self, request: Request, request_id: str) -> Response:
        return Response(AccessRequestSerializer(_request(request, request_id)).data)


class Review(APIView):
    approve = True

    @extend_schema(request=Reason, responses={200: AccessRequestSerializer})
    def post(self, request: Request, request_id: str) -> Response:
        wanted = Reason(data=request.data)
        wanted.is_valid(raise_exception=True)
        access_request = services.access_request_review(
            by=request.user,
            access_request=_request(request, request_id),
            approve=self.approve,
            reason=wanted.validated_data["reason"],
        )
        return Response(AccessRequestSerializer(access_request).data)


class Approve(Review):
    """The agreement's reviewer approves: the grants are created."""


class Reject(Review):
    """The agreement's reviewer rejects, with a reason."""

    approve = False


# --- grants and delivery -------------------------------------------------------------------------


class GrantSerializer(serializers.ModelSerializer[Grant]):
    organisation = serializers.CharField(source="organisation.slug", read_only=True)
    holder = serializers.CharField(source="dataset.holder.slug", read_only=True)

    class Meta:
        model = Grant
        fields = [
            "id", "organisation", "holder", "dataset", "access_request", "agreement", "purpose", "recipient_category",
            "fields", "retention_days", "state", "starts_at", "ends_at", "revoked_at", "revoke_reason",
        ]  # fmt: skip


class GrantList(generics.ListAPIView[Grant]):
    """Grants the caller holds, or that use the caller's data."""

    serializer_class = GrantSerializer

    def get_queryset(self) -> QuerySet[Grant]:
        return policy.grants_visible_to(self.request.user).select_related("organisation", "dataset__holder")


def _grant(request: Request, grant_id: Any) -> Grant:
    found = policy.grants_visible_to(request.user).select_related("organisation", "dataset__holder", "agreement")
    grant = by_id(found, grant_id)
    if grant is None:
        raise NotFound("No such grant.")
    return grant


class GrantDetail(APIView):
    @extend_schema(responses={200: GrantSerializer})
    def get(self, request: Request, grant_id: str) -> Response:
        return Response(GrantSerializer(_grant(request, grant_id)).data)


class GrantRevoke(APIView):
    """The holder's admins or an operator end the grant; its tokens are refused from the next request."""

    @extend_schema(request=Reason, responses={200: GrantSerializer})
    def post(self, request: Request, grant_id: str) -> Response:
        wanted = Reason(data=request.data)
        wanted.is_valid(raise_exception=True)
        grant = services.grant_revoke(
            by=request.user, grant=_grant(request, grant_id), reason=wanted.validated_data["reason"]
        )
        return Response(GrantSerializer(grant).data)


class ResultsFiling(serializers.Serializer[Any]):
    summary = serializers.CharField(max_length=10_000, help_text="what the data served, in plain words")
    data_deleted = serializers.BooleanField(help_text="you deleted the data you received")
    outputs = serializers.ListField(child=WebUrlField(), max_length=50, default=list)


class ResultsSerializer(serializers.ModelSerializer[ProcessingResult]):
    class Meta:
        model = ProcessingResult
        fields = ["grant", "summary", "outputs", "data_deleted", "filed_by", "filed_at"]


class GrantResults(APIView):
    """Once a grant has ended, its data user files what the data served (it feeds the annual report)."""

    @extend_schema(responses={200: ResultsSerializer})
    def get(self, request: Request, grant_id: str) -> Response:
        result = ProcessingResult.objects.filter(grant=_grant(request, grant_id)).first()
        if result is None:
            raise NotFound("No results filed for this grant yet.")
        return Response(ResultsSerializer(result).data)

    @extend_schema(request=ResultsFiling, responses={201: ResultsSerializer})
    def post(self, request: Request, grant_id: str) -> Response:
        wanted = ResultsFiling(data=request.data)
        wanted.is_valid(raise_exception=True)
        result = services.results_file(by=request.user, grant=_grant(request, grant_id), **wanted.validated_data)
        return Response(ResultsSerializer(result).data, status=status.HTTP_201_CREATED)


class NotAcceptable(TiersError):
    status = 406
    slug = "not-acceptable"
    title = "Tiers cannot answer in the media type asked for."


STREAM_TYPES = {"application/x-ndjson": delivery.stream_jsonl, "text/csv": delivery.stream_csv}


def _stream_type(accept: str) -> str:
    """The media type to stream: the first of ours the Accept header names; JSON Lines by default."""
    asked = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    for media_type in asked:
        if media_type in STREAM_TYPES:
            return media_type
        if media_type in ("*/*", "application/*"):
            return "application/x-ndjson"
    if not asked:
        return "application/x-ndjson"
    raise NotAcceptable(f"Ask for one of: {', '.join(STREAM_TYPES)}.")


class StreamNegotiation(BaseContentNegotiation):
    """The view streams CSV or JSON Lines itself (see _stream_type); errors are problem+json."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class GrantRecords(APIView):
    """The grant's records, as they may be read now: consenting subjects only, granted fields only.

    Needs an access token bound to this grant. Each read is recorded (audit
    entry with the number of records and a digest of the subjects included).
    """

    authentication_classes = [AccessTokenAuthentication]
    content_negotiation_class = StreamNegotiation

    @extend_schema(
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="one JSON object per line"),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="a header row, then one row per record"),
        }
    )
    def get(self, request: Request, grant_id: str) -> StreamingHttpResponse:
        media_type = _stream_type(request.headers.get("Accept", ""))
        found = by_id(Grant.objects.select_related("dataset", "organisation", "agreement"), grant_id)
        if found is None:
            raise NotFound("No such grant for this token.")
        policy.require_grant_reader(request.auth, found)
        read = delivery.open_read(found)
        response = StreamingHttpResponse(STREAM_TYPES[media_type](read), content_type=f"{media_type}; charset=utf-8")
        response["Tiers-Delivery"] = str(read.delivery.pk)
        response["Tiers-Records"] = str(read.delivery.records)
        response["Cache-Control"] = "no-store"
        return response


class DecisionRequest(serializers.Serializer[Any]):
    grant = serializers.UUIDField()
    subjects = serializers.ListField(
        child=serializers.CharField(max_length=128), min_length=1, max_length=delivery.MAX_DECISION_SUBJECTS
    )


class Decisions(APIView):
    """Federated holders: which of these subject references this grant may include now."""

    authentication_classes = [AccessTokenAuthentication]

    @extend_schema(request=DecisionRequest, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        wanted = DecisionRequest(data=request.data)
        wanted.is_valid(raise_exception=True)
        if not isinstance(request.user, ClientPrincipal):
            raise NotFound("No such grant for this holder.")
        grant = selectors.grant_for_holder(request.user, wanted.validated_data["grant"])
        return Response(delivery.decide(by=request.user, grant=grant, subject_refs=wanted.validated_data["subjects"]))


class JoseParser(serializers.Serializer[Any]):
    receipt = serializers.CharField(max_length=5_000_000, help_text="the compact JWS")


class Receipts(APIView):
    """Federated holders report each delivery as a signed access receipt (compact JWS)."""

    authentication_classes = [AccessTokenAuthentication]

    @extend_schema(request=JoseParser, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        wanted = JoseParser(data=request.data)
        wanted.is_valid(raise_exception=True)
        if not isinstance(request.user, ClientPrincipal):
            raise NotFound("No such grant for this holder.")
        recorded = delivery.receipt_record(by=request.user, compact=wanted.validated_data["receipt"])
        return Response(
            {"delivery": str(recorded.pk), "subjects": recorded.subjects, "records": recorded.records},
            status=status.HTTP_201_CREATED,
        )


# --- citizens: who used my data ------------------------------------------------------------------


class AccessSerializer(serializers.ModelSerializer[DeliverySubject]):
    delivery = serializers.UUIDField(source="delivery.id")
    at = serializers.DateTimeField(source="delivery.at")
    kind = serializers.CharField(source="delivery.kind")
    organisation = serializers.CharField(source="delivery.grant.organisation.slug")
    organisation_name = serializers.CharField(source="delivery.grant.organisation.name")
    holder = serializers.CharField(source="delivery.grant.dataset.holder.slug")
    dataset = serializers.CharField(source="delivery.grant.dataset.title")
    grant = serializers.UUIDField(source="delivery.grant.id")
    purpose = serializers.CharField(source="delivery.grant.purpose")
    audit_leaf_index = serializers.IntegerField(
        source="leaf_index", allow_null=True, help_text="the audit entry's place in the log, once sequenced"
    )

    class Meta:
        model = DeliverySubject
        fields = [
            "delivery", "at", "kind", "organisation", "organisation_name", "holder", "dataset", "grant", "purpose",
            "records", "audit_leaf_index",
        ]  # fmt: skip


class MyAccesses(generics.ListAPIView[DeliverySubject]):
    """Every delivery that included the citizen: who, which grant and purpose, when, how many records.

    Each names its audit entry; `/api/v1/audit/entries/{leaf}` and the inclusion
    proof endpoint prove it is in the log.
    """

    authentication_classes = [PortalSessionAuthentication]
    permission_classes = [IsCitizen]
    serializer_class = AccessSerializer

    def get_queryset(self) -> QuerySet[DeliverySubject]:
        return selectors.accesses_of(acting_user(self.request))
