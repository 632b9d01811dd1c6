"""The public transparency pages, mounted at /transparency/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from broker.dga import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.index, name="transparency"),
    path("logo.svg", views.logo_image, name="transparency-logo"),
    path("register-qr.svg", views.register_qr, name="transparency-register-qr"),
    path("agreements/", views.agreement_list, name="transparency-agreements"),
    path("agreements/<uuid:agreement_id>/", views.agreement_detail, name="transparency-agreement"),
    path("grants/", views.grant_list, name="transparency-grants"),
    path("log/", views.log_page, name="transparency-log"),
    path("reports/", views.report_list, name="transparency-reports"),
]
