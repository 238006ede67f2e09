"""Sites in the admin: who may embed the widget, how it looks, how the bot behaves there.

The change page shows the tag to paste and, to those who may change sites, the identify secret
(derived from SECRET_KEY, never stored) with an action to rotate it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static

from chat.models import Site
from chat.sites import identify_secret, site_cache_clear


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "public_key", "enabled", "origin_list", "conversation_count", "language", "created_at")
    list_filter = ("enabled", "language", "photos_enabled", "voice_enabled", "handoff_enabled")
    search_fields = ("name", "public_key", "allowed_origins")
    readonly_fields = ("public_key", "created_at", "updated_at")
    actions = ("rotate_identify_secret", "disable_sites", "enable_sites")
    change_form_template = "admin/chat/site/change_form.html"
    fieldsets = (
        (None, {"fields": ("name", "enabled", "public_key", "created_at", "updated_at")}),
        ("Where the chat may appear", {"fields": ("allowed_origins",)}),
        ("Appearance", {"fields": ("brand_color", "position", "language", "greeting")}),
        ("Assistant", {"fields": ("system_prompt", "contact", "product_url", "model", "model_quick", "model_premium")}),
        (
            "Features",
            {
                "fields": (
                    "photos_enabled",
                    "voice_enabled",
                    "handoff_enabled",
                    "quick_tier_enabled",
                    "premium_tier_enabled",
                )
            },
        ),
        (
            "Limits for the whole site (0: none of its own)",
            {"fields": ("messages_per_minute", "connections_max", "uploads_per_hour")},
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Site]:
        queryset: QuerySet[Site] = super().get_queryset(request)
        return queryset.annotate(conversation_total=Count("conversations"))

    @admin.display(description="Allowed origins")
    def origin_list(self, site: Site) -> str:
        return ", ".join(site.origins) or "(the app's own pages only)"

    @admin.display(description="Conversations", ordering="conversation_total")
    def conversation_count(self, site: Site) -> int:
        return int(getattr(site, "conversation_total", 0))

    def save_model(self, request: HttpRequest, obj: Site, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        site_cache_clear(obj)  # the widget sees the change at once, not after the cache expires

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        site = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if site is not None:
            loader = request.build_absolute_uri(static("supportbot/widget.js"))
            context["embed_tag"] = f'<script src="{loader}" data-site="{site.public_key}" async></script>'
            if self.has_change_permission(request, site):
                context["identify_secret"] = identify_secret(site)
        return super().change_view(request, object_id, form_url, extra_context=context)

    @admin.action(description="Rotate the identify secret (the shop's server must use the new one)")
    def rotate_identify_secret(self, request: HttpRequest, queryset: QuerySet[Site]) -> None:
        if not self.has_change_permission(request):
            return
        queryset.update(secret_version=F("secret_version") + 1)
        for site in queryset:
            site_cache_clear(site)
        self.message_user(request, "New identify secrets: open each site to copy its secret.", messages.WARNING)

    @admin.action(description="Switch the chat off on these sites")
    def disable_sites(self, request: HttpRequest, queryset: QuerySet[Site]) -> None:
        queryset.update(enabled=False)
        for site in queryset:
            site_cache_clear(site)

    @admin.action(description="Switch the chat on for these sites")
    def enable_sites(self, request: HttpRequest, queryset: QuerySet[Site]) -> None:
        queryset.update(enabled=True)
        for site in queryset:
            site_cache_clear(site)
