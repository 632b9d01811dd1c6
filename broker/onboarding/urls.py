"""Organisation onboarding: applications, verification or rejection, and invitations."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from broker.onboarding import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.organisation_apply, name="organisation-apply"),
    # Before the invitations: an organisation whose slug is "invitations" still reaches its members.
    path("<slug:slug>/members/", views.members, name="organisation-members"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
]
