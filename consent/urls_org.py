from __future__ import annotations

from django.urls import path

from consent import holder_views

urlpatterns = [
    path("", holder_views.module_list, name="consent-module-list"),
    path("new", holder_views.module_publish, name="consent-module-publish"),
    path("<int:module_id>/", holder_views.module_preview, name="consent-module-preview"),
]
