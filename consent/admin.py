from __future__ import annotations

from django.contrib import admin

from consent.models import CitizenProfile


@admin.register(CitizenProfile)
class CitizenProfileAdmin(admin.ModelAdmin[CitizenProfile]):
    list_display = ["user", "display_name", "preferred_language", "created_at"]
    search_fields = ["user__username", "display_name"]
