"""Portal pages of data sharing, under /org/<slug>/: datasets, agreements, requests and grants."""

from __future__ import annotations

from django.urls import URLPattern, path

from sharing import views

urlpatterns: list[URLPattern] = [
    path("datasets/", views.dataset_list, name="sharing-dataset-list"),
    path("datasets/new", views.dataset_register, name="sharing-dataset-register"),
    path("datasets/<uuid:dataset_id>/", views.dataset_detail, name="sharing-dataset-detail"),
    path("datasets/<uuid:dataset_id>/withdraw", views.dataset_withdraw, name="sharing-dataset-withdraw"),
    path("agreements/", views.agreement_list, name="sharing-agreement-list"),
    path("agreements/new", views.agreement_propose, name="sharing-agreement-propose"),
    path("agreements/<uuid:agreement_id>/", views.agreement_detail, name="sharing-agreement-detail"),
    path("agreements/<uuid:agreement_id>/sign", views.agreement_sign, name="sharing-agreement-sign"),
    path(
        "agreements/<uuid:agreement_id>/countersign",
        views.agreement_countersign,
        name="sharing-agreement-countersign",
    ),
    path("agreements/<uuid:agreement_id>/terminate", views.agreement_terminate, name="sharing-agreement-terminate"),
    path("reviews/", views.review_inbox, name="sharing-review-inbox"),
    path("reviews/<uuid:request_id>/decide", views.review_decide, name="sharing-review-decide"),
    path("requests/", views.request_list, name="sharing-request-list"),
    path("requests/new", views.request_submit, name="sharing-request-submit"),
    path("grants/", views.grant_list, name="sharing-grant-list"),
    path("grants/<uuid:grant_id>/revoke", views.grant_revoke, name="sharing-grant-revoke"),
]
