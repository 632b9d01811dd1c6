from __future__ import annotations

from django.urls import path

from broker.audit import api

urlpatterns = [
    path("", api.LogInfo.as_view(), name="audit-log"),
    path("checkpoints/latest", api.CheckpointLatest.as_view(), name="audit-checkpoint-latest"),
    path("checkpoints/", api.CheckpointList.as_view(), name="audit-checkpoint-list"),
    path("proofs/inclusion", api.InclusionProof.as_view(), name="audit-proof-inclusion"),
    path("proofs/consistency", api.ConsistencyProof.as_view(), name="audit-proof-consistency"),
    path("entries/", api.EntryList.as_view(), name="audit-entry-list"),
    path("entries/<int:leaf_index>", api.EntryDetail.as_view(), name="audit-entry-detail"),
]
