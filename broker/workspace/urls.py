"""The operators' workspace: countersigning, ethics review, exclusions and incidents."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from broker.workspace import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.dashboard, name="workspace"),
    path("second-factor/", views.second_factor, name="workspace-second-factor"),
    path("organisations/", views.organisations, name="workspace-organisations"),
    path("organisations/<slug:slug>/verify", views.organisation_verify, name="workspace-organisation-verify"),
    path("organisations/<slug:slug>/reject", views.organisation_reject, name="workspace-organisation-reject"),
    path("organisations/<slug:slug>/exclude", views.organisation_exclude, name="workspace-organisation-exclude"),
    path("agreements/", views.agreements, name="workspace-agreements"),
    path(
        "agreements/<uuid:agreement_id>/countersign",
        views.agreement_countersign,
        name="workspace-agreement-countersign",
    ),
    path("ethics/", views.ethics, name="workspace-ethics"),
    path("ethics/<uuid:request_id>/decide", views.ethics_decide, name="workspace-ethics-decide"),
    path("incidents/", views.incident_list, name="workspace-incidents"),
    path("incidents/<uuid:incident_id>/", views.incident_detail, name="workspace-incident"),
    path("incidents/<uuid:incident_id>/notify", views.incident_notify, name="workspace-incident-notify"),
    path("incidents/<uuid:incident_id>/close", views.incident_close, name="workspace-incident-close"),
]
