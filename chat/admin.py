"""A first review view for staff: conversations with their transcript (read-only)."""

from __future__ import annotations

from typing import cast

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from chat.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    ordering = ["seq"]
    fields = ("seq", "created_at", "author", "text", "status", "model", "usage", "first_token_ms", "error_code")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "last_message_at", "status", "message_count"]
    list_filter = ["status", "created_at"]
    search_fields = ["id", "messages__text"]
    date_hierarchy = "created_at"
    readonly_fields = ["id", "owner_hash", "last_seq", "created_at", "updated_at", "last_message_at"]
    inlines = [MessageInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        queryset = cast("QuerySet[Conversation]", super().get_queryset(request))
        return queryset.annotate(message_count=Count("messages"))

    @admin.display(ordering="message_count", description="Messages")
    def message_count(self, obj: Conversation) -> int:
        return getattr(obj, "message_count", 0)
