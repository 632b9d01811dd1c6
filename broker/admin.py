"""Django admin for operators."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from broker import audit, services
from broker.dga.models import OperatorProfile
from broker.errors import TiersError
from broker.models import Membership, Organisation, OutboxEvent, User

admin.site.site_header = "Tiers operators"
admin.site.site_title = "Tiers"

admin.site.register(User, UserAdmin)


class MembershipInline(admin.TabularInline[Membership, Organisation]):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin[Organisation]):
    list_display = ["name", "slug", "kind", "country", "verification_state", "verified_at"]
    list_filter = ["kind", "verification_state", "country"]
    search_fields = ["name", "slug", "legal_identifier"]
    # Verification goes through the service, so it is recorded and notified.
    readonly_fields = ["verification_state", "verified_at", "created_at"]
    inlines = [MembershipInline]
    actions = ["verify"]

    @admin.action(description="Verify the selected organisations")
    def verify(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> None:
        verified = 0
        for organisation in queryset:
            try:
                services.organisation_verify(actor=request.user, organisation=organisation)  # type: ignore[arg-type]
            except TiersError as exc:
                messages.error(request, f"{organisation.slug}: {exc.detail}")
            else:
                verified += 1
        messages.success(request, f"{verified} organisation(s) verified.")


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin[OutboxEvent]):
    list_display = ["pk", "topic", "created_at", "attempts", "handled_at"]
    list_filter = ["topic"]
    readonly_fields = [field.name for field in OutboxEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(OperatorProfile)
class OperatorProfileAdmin(admin.ModelAdmin[OperatorProfile]):
    """Tiers' own DGA registration, shown at /transparency/ and /api/v1/register: one row."""

    list_display = ["legal_name", "role", "registration_number", "status", "registered_at"]
    readonly_fields = ["updated_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not OperatorProfile.objects.exists()

    def save_model(
        self, request: HttpRequest, obj: OperatorProfile, form: ModelForm[OperatorProfile], change: bool
    ) -> None:
        # The public register changes here: the log keeps which fields changed and the status that results.
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit.record(
                verb="dga.profile_updated" if change else "dga.profile_recorded",
                actor=request.user,  # type: ignore[arg-type]
                subject=obj,
                details={"changed": sorted(form.changed_data), "status": obj.status},
            )
