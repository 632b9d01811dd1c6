from __future__ import annotations

from django.urls import path

from consent import accounts, views

urlpatterns = [
    path("", views.dashboard, name="citizen-dashboard"),
    path("link/", views.link_redeem, name="citizen-link"),
    path("links/<int:link_id>/unlink", views.unlink, name="citizen-unlink"),
    path("links/<int:link_id>/withdraw-all", views.withdraw_all, name="citizen-withdraw-all"),
    path("modules/<int:module_id>/", views.module_consent, name="citizen-module"),
    path("consents/<uuid:consent_id>/", views.consent_detail, name="citizen-consent"),
    path("consents/<uuid:consent_id>/<str:action>/", views.consent_action, name="citizen-consent-action"),
    path("accesses/", views.accesses, name="citizen-accesses"),
    path("rights/", views.rights_requests, name="citizen-rights"),
    path("accesses/<uuid:delivery_id>/", views.access_detail, name="citizen-access"),
    path("account/", accounts.account, name="citizen-account"),
    path("account/export", accounts.account_export, name="citizen-export"),
    path("account/delete", accounts.account_erasure, name="citizen-erasure"),
]
