"""Tiers' URLs. The portal has no language prefix: the switcher, a cookie or the browser choose."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from broker import api, health, jwks, problems, views
from broker.oauth import api as oauth_api
from broker.oauth import portal as oauth_portal
from broker.oauth import views as oauth_views
from broker.observability import views as observability_views
from broker.security import account_views
from broker.security import views as security_views
from consent import accounts, oidc

api_v1: list[URLPattern | URLResolver] = [
    path("organisations/", api.OrganisationList.as_view(), name="organisation-list"),
    path("organisations/me", api.OrganisationMe.as_view(), name="organisation-me"),
    path("audit/", include("broker.audit.urls")),
    path("", include("broker.dga.urls_api")),
    path("", include("consent.urls_api")),
    path("", include("sharing.urls_api")),
    path("clients/", oauth_api.ClientList.as_view(), name="client-list"),
    path("clients/<str:client_id>/rotate", oauth_api.ClientRotate.as_view(), name="client-rotate"),
    path("clients/<str:client_id>/disable", oauth_api.ClientDisable.as_view(), name="client-disable"),
    path("", include("broker.webhooks.urls_api")),
    re_path(r"^(?P<path>.*)$", problems.api_not_found),
]

urlpatterns = [
    path("", views.home, name="portal-home"),
    # The providers are a callable so the page follows the settings as they are when it renders.
    path("accounts/login/", views.LoginView.as_view(extra_context={"oidc_providers": oidc.providers}), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/2fa/", security_views.two_factor, name="two-factor"),
    path("accounts/2fa/passkeys/options", security_views.passkey_options, name="two-factor-passkey-options"),
    path("accounts/2fa/passkeys/verify", security_views.passkey_verify, name="two-factor-passkey-verify"),
    path("accounts/security/", account_views.security, name="account-security"),
    path("accounts/security/passkeys/options", account_views.passkey_register_options, name="passkey-register-options"),
    path("accounts/security/passkeys/register", account_views.passkey_register, name="passkey-register"),
    path("accounts/security/passkeys/remove", account_views.passkey_remove, name="passkey-remove"),
    path("accounts/security/recovery-codes", account_views.recovery_codes_generate, name="recovery-codes-generate"),
    path("accounts/signup/", accounts.signup, name="citizen-signup"),
    path("accounts/oidc/<slug:name>/login", oidc.oidc_login, name="oidc-login"),
    path("accounts/oidc/<slug:name>/callback", oidc.oidc_callback, name="oidc-callback"),
    path("accounts/verify/<str:uidb64>/<str:token>/", accounts.verify_email, name="citizen-verify"),
    path("accounts/goodbye/", accounts.goodbye, name="citizen-goodbye"),
    path("accounts/", include("django.contrib.auth.urls")),  # password reset and change
    path("i18n/", include("django.conf.urls.i18n")),
    path("transparency/", include("broker.dga.urls")),
    path("operator/", include("broker.workspace.urls")),
    path("join/", include("broker.onboarding.urls")),
    path("org/", views.organisation_index, name="organisation-index"),
    path("org/<slug:slug>/", views.organisation_detail, name="organisation-detail"),
    path("org/<slug:slug>/clients/", oauth_portal.client_list, name="client-portal-list"),
    path("org/<slug:slug>/clients/<str:client_id>/rotate", oauth_portal.client_rotate, name="client-portal-rotate"),
    path("org/<slug:slug>/clients/<str:client_id>/disable", oauth_portal.client_disable, name="client-portal-disable"),
    path("org/<slug:slug>/webhooks/", include("broker.webhooks.urls")),
    path("org/<slug:slug>/consent-modules/", include("consent.urls_org")),
    path("org/<slug:slug>/", include("sharing.urls")),
    path("me/", include("consent.urls")),
    path("admin/login/", security_views.admin_login),  # the portal's login, with its second factor
    path("admin/", admin.site.urls),
    path("oauth/jwks", jwks.jwks_view, name="jwks"),
    path("oauth/token", oauth_views.token, name="oauth-token"),
    path("oauth/introspect", oauth_views.introspect, name="oauth-introspect"),
    path("oauth/revoke", oauth_views.revoke, name="oauth-revoke"),
    path(".well-known/oauth-authorization-server", oauth_views.metadata, name="oauth-metadata"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", observability_views.metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include(api_v1)),
    re_path(r"^api/(?P<path>.*)$", problems.api_not_found),
]

handler400 = problems.handler400
handler403 = problems.handler403
handler404 = problems.handler404
handler500 = problems.handler500
