"""A first review view for staff: conversations with their transcript, usage and cost.
Staff can pin the model tier of a conversation; everything else is read-only."""

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
    ordering = ("created_at",)
    fields = (
        "seq",
        "created_at",
        "kind",
        "author",
        "text",
        "status",
        "model",
        "usage",
        "cost",
        "first_token_ms",
        "error_code",
        "grounding",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "last_message_at",
        "status",
        "message_count",
        "model_tier",
        "prompt_tokens",
        "completion_tokens",
        "cost",
    )
    list_filter = ("status", "model_tier", "created_at")
    search_fields = ("id", "messages__text")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "status",
        "model_tier",
        "created_at",
        "last_message_at",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "last_seq",
    )
    # Staff may change only the model tier here; the rest is the record of what happened.
    readonly_fields = tuple(name for name in fields if name != "model_tier")
    inlines = (MessageInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        queryset = cast("QuerySet[Conversation]", super().get_queryset(request))
        return queryset.annotate(message_count=Count("messages"))

    @admin.display(ordering="message_count", description="Messages")
    def message_count(self, obj: Conversation) -> int:
        return getattr(obj, "message_count", 0)
