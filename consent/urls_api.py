from __future__ import annotations

from django.urls import path

from consent import api

urlpatterns = [
    path("link-codes/", api.LinkCodes.as_view(), name="link-codes"),
    path("consent-modules/", api.ConsentModules.as_view(), name="consent-modules"),
    path("me/consents/", api.MyConsents.as_view(), name="my-consents"),
    path("me/consents/<str:consent_id>", api.MyConsent.as_view(), name="my-consent"),
    path("me/consents/<str:consent_id>/withdraw", api.Withdraw.as_view(), name="my-consent-withdraw"),
    path("me/consents/<str:consent_id>/pause", api.Pause.as_view(), name="my-consent-pause"),
    path("me/consents/<str:consent_id>/resume", api.Resume.as_view(), name="my-consent-resume"),
    path("me/consents/<str:consent_id>/renew", api.Renew.as_view(), name="my-consent-renew"),
    path("me/consents/<str:consent_id>/kantara", api.Kantara.as_view(), name="my-consent-kantara"),
    path("me/export", api.Export.as_view(), name="my-export"),
    path("me/erasure", api.MyErasure.as_view(), name="my-erasure"),
    path("me/rights/", api.MyRights.as_view(), name="my-rights"),
    path("me/rights/<str:request_id>", api.MyRight.as_view(), name="my-right"),
    path("consents/<str:consent_id>/receipt", api.Receipt.as_view(), name="consent-receipt"),
]
