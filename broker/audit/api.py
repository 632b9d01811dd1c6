"""The transparency log's public API: checkpoints, proofs and entries. No login needed."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, renderers, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from broker import keys
from broker.api_base import CursorPagination
from broker.audit import log, selectors
from broker.models import AuditEntry, Checkpoint
from broker.transparency import verify


class PlainTextRenderer(renderers.BaseRenderer):
    """The C2SP signed-note form of a checkpoint, for transparency-log witnesses and tools."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data.encode() if isinstance(data, str) else json.dumps(data).encode()


class CheckpointSerializer(serializers.ModelSerializer[Checkpoint]):
    root_hash = serializers.SerializerMethodField()
    timestamp = serializers.SerializerMethodField()

    class Meta:
        model = Checkpoint
        fields = ["tree_size", "root_hash", "timestamp", "jws"]

    def get_root_hash(self, checkpoint: Checkpoint) -> str:
        return log.b64(bytes(checkpoint.root_hash))

    def get_timestamp(self, checkpoint: Checkpoint) -> str:
        return log.timestamp(checkpoint.timestamp)


class PublicView(APIView):
    permission_classes = [AllowAny]


class LogInfo(PublicView):
    """What a verifier needs to know about the log: its origin, hashing and keys."""

    @extend_schema(
        responses=inline_serializer(
            "LogInfo",
            {
                "origin": serializers.CharField(),
                "hash_algorithm": serializers.CharField(),
                "jwks_uri": serializers.URLField(),
                "note_verifier_keys": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "origin": log.origin(),
                "hash_algorithm": log.HASH_ALGORITHM,
                "jwks_uri": f"{settings.TIERS_BASE_URL}/oauth/jwks",
                "note_verifier_keys": [
                    verify.note_verifier_key(log.origin(), public_key) for public_key in keys.note_public_keys()
                ],
            }
        )


class CheckpointLatest(PublicView):
    """The newest signed checkpoint: JSON with a JWS, or a C2SP signed note with Accept: text/plain."""

    renderer_classes = [renderers.JSONRenderer, PlainTextRenderer]

    @extend_schema(
        responses={
            (200, "application/json"): CheckpointSerializer,
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="C2SP tlog-checkpoint"),
        }
    )
    def get(self, request: Request) -> Response:
        checkpoint = selectors.checkpoint_latest()
        if request.accepted_renderer.format == "txt":
            return Response(checkpoint.note)
        return Response(CheckpointSerializer(checkpoint).data)


class BySizeDescending(CursorPagination):
    ordering = "-tree_size"


class CheckpointList(generics.ListAPIView[Checkpoint]):
    """Every signed checkpoint, newest first."""

    permission_classes = [AllowAny]
    serializer_class = CheckpointSerializer
    pagination_class = BySizeDescending
    queryset = Checkpoint.objects.all()


class InclusionQuery(serializers.Serializer[Any]):
    leaf_index = serializers.IntegerField(min_value=0)
    tree_size = serializers.IntegerField(min_value=1)


class ConsistencyQuery(serializers.Serializer[Any]):
    first = serializers.IntegerField(min_value=1)
    second = serializers.IntegerField(min_value=1)


class InclusionProof(PublicView):
    """RFC 9162 inclusion proof of one leaf in the tree of a given size."""

    @extend_schema(
        parameters=[InclusionQuery],
        responses=inline_serializer(
            "InclusionProof",
            {
                "leaf_index": serializers.IntegerField(),
                "tree_size": serializers.IntegerField(),
                "leaf_hash": serializers.CharField(),
                "audit_path": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        query = InclusionQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(
            selectors.inclusion_proof(query.validated_data["leaf_index"], query.validated_data["tree_size"])
        )


class ConsistencyProof(PublicView):
    """RFC 9162 consistency proof between two tree sizes."""

    @extend_schema(
        parameters=[ConsistencyQuery],
        responses=inline_serializer(
            "ConsistencyProof",
            {
                "first": serializers.IntegerField(),
                "second": serializers.IntegerField(),
                "consistency_path": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        query = ConsistencyQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(selectors.consistency_proof(query.validated_data["first"], query.validated_data["second"]))


class EntrySerializer(serializers.Serializer[AuditEntry]):
    """An entry in full when the caller may read its event; its leaf hash alone otherwise."""

    leaf_index = serializers.IntegerField()
    leaf_hash = serializers.SerializerMethodField()
    redacted = serializers.SerializerMethodField()
    verb = serializers.SerializerMethodField()
    subject = serializers.SerializerMethodField()
    event = serializers.SerializerMethodField()
    canonical = serializers.SerializerMethodField(help_text="base64 of the bytes the leaf hash commits to")

    def _readable(self, entry: AuditEntry) -> bool:
        return selectors.can_read_event(self.context["request"].user, entry)

    def get_leaf_hash(self, entry: AuditEntry) -> str:
        return log.b64(bytes(entry.leaf_hash))

    def get_redacted(self, entry: AuditEntry) -> bool:
        return not self._readable(entry)

    def get_verb(self, entry: AuditEntry) -> str | None:
        return entry.body.verb if self._readable(entry) else None

    def get_subject(self, entry: AuditEntry) -> str | None:
        return entry.body.subject if self._readable(entry) else None

    def get_event(self, entry: AuditEntry) -> dict[str, Any] | None:
        return json.loads(bytes(entry.body.canonical)) if self._readable(entry) else None

    def get_canonical(self, entry: AuditEntry) -> str | None:
        return log.b64(bytes(entry.body.canonical)) if self._readable(entry) else None


class ByLeafIndex(CursorPagination):
    ordering = "leaf_index"


class EntryFilter(serializers.Serializer[Any]):
    """Read from a plain dict of the query: a filter given empty is refused, not taken as absent (as a form's)."""

    verb = serializers.CharField(required=False, max_length=64)
    subject = serializers.CharField(required=False, max_length=128)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class EntryList(generics.ListAPIView[AuditEntry]):
    """Sequenced entries in log order; events about citizens only for them and operators."""

    permission_classes = [AllowAny]
    serializer_class = EntrySerializer
    pagination_class = ByLeafIndex

    @extend_schema(parameters=[EntryFilter])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        filters = EntryFilter(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        return selectors.entries(self.request.user, **filters.validated_data)


class EntryDetail(PublicView):
    """One entry by its leaf index."""

    @extend_schema(responses=EntrySerializer)
    def get(self, request: Request, leaf_index: int) -> Response:
        entry = selectors.entry(leaf_index)
        return Response(EntrySerializer(entry, context={"request": request}).data)
