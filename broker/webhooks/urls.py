"""Portal pages of webhooks, under /org/<slug>/webhooks/."""

from __future__ import annotations

from django.urls import path

from broker.webhooks import views

urlpatterns = [
    path("", views.webhook_list, name="webhook-portal-list"),
    path("<uuid:endpoint_id>/disable", views.webhook_disable, name="webhook-portal-disable"),
    path("deliveries/<uuid:delivery_id>/replay", views.delivery_replay, name="webhook-portal-replay"),
]
