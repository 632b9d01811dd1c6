from __future__ import annotations

from django.urls import path

from consent import views

urlpatterns = [
    path("", views.dashboard, name="citizen-dashboard"),
]
