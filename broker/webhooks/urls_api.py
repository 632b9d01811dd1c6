from __future__ import annotations

from django.urls import path

from broker.webhooks import api

urlpatterns = [
    path("webhooks/", api.EndpointList.as_view(), name="webhook-list"),
    path("webhooks/deliveries/", api.DeliveryList.as_view(), name="webhook-delivery-list"),
    path("webhooks/deliveries/<str:delivery_id>/replay", api.DeliveryReplay.as_view(), name="webhook-delivery-replay"),
    path("webhooks/acknowledgements", api.RightsAcknowledge.as_view(), name="webhook-acknowledgements"),
    path("webhooks/<str:endpoint_id>/disable", api.EndpointDisable.as_view(), name="webhook-disable"),
    path("grants/<str:grant_id>/deletions", api.DeletionAttestation.as_view(), name="grant-deletions"),
]
