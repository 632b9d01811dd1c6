from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from broker.dga import api, reports_api

urlpatterns: list[URLPattern | URLResolver] = [
    path("register", api.Register.as_view(), name="register"),
    path("register/dossier", reports_api.Dossier.as_view(), name="register-dossier"),
    path("reports/records", reports_api.Records.as_view(), name="report-records"),
    path("reports/annual/<int:year>", reports_api.Annual.as_view(), name="report-annual"),
]
