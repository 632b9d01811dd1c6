from __future__ import annotations

from django.urls import include, path

from sharing import api

urlpatterns = [
    path("", include("sharing.urls_public")),
    path("datasets/", api.DatasetList.as_view(), name="dataset-list"),
    path("datasets/<str:dataset_id>", api.DatasetDetail.as_view(), name="dataset-detail"),
    path("datasets/<str:dataset_id>/withdraw", api.DatasetWithdraw.as_view(), name="dataset-withdraw"),
    path("datasets/<str:dataset_id>/records/delete", api.RecordsDelete.as_view(), name="dataset-records-delete"),
    path("datasets/<str:dataset_id>/rotate-key", api.KeyRotate.as_view(), name="dataset-rotate-key"),
    path("datasets/<str:dataset_id>/uploads/", api.Uploads.as_view(), name="dataset-uploads"),
    path("datasets/<str:dataset_id>/uploads/<str:upload_id>", api.UploadDetail.as_view(), name="dataset-upload"),
    path("agreements/", api.AgreementList.as_view(), name="agreement-list"),
    path("agreements/<str:agreement_id>", api.AgreementDetail.as_view(), name="agreement-detail"),
    path("agreements/<str:agreement_id>/versions", api.AgreementRevise.as_view(), name="agreement-revise"),
    path("agreements/<str:agreement_id>/sign", api.AgreementSign.as_view(), name="agreement-sign"),
    path("agreements/<str:agreement_id>/countersign", api.AgreementCountersign.as_view(), name="agreement-countersign"),
    path("agreements/<str:agreement_id>/terminate", api.AgreementTerminate.as_view(), name="agreement-terminate"),
    path("access-requests/", api.AccessRequestList.as_view(), name="access-request-list"),
    path("access-requests/<str:request_id>", api.AccessRequestDetail.as_view(), name="access-request-detail"),
    path("access-requests/<str:request_id>/approve", api.Approve.as_view(), name="access-request-approve"),
    path("access-requests/<str:request_id>/reject", api.Reject.as_view(), name="access-request-reject"),
    path("grants/", api.GrantList.as_view(), name="grant-list"),
    path("grants/<str:grant_id>", api.GrantDetail.as_view(), name="grant-detail"),
    path("grants/<str:grant_id>/revoke", api.GrantRevoke.as_view(), name="grant-revoke"),
    path("grants/<str:grant_id>/records", api.GrantRecords.as_view(), name="grant-records"),
    path("grants/<str:grant_id>/results", api.GrantResults.as_view(), name="grant-results"),
    path("decisions", api.Decisions.as_view(), name="decisions"),
    path("decisions/receipts", api.Receipts.as_view(), name="decision-receipts"),
    path("me/accesses/", api.MyAccesses.as_view(), name="my-accesses"),
]
