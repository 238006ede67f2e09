"""A first review view for staff: conversations with their transcript, usage and cost.
Staff can pin the model tier of a conversation; everything else is read-only."""

from __future__ import annotations

from typing import cast

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from chat.media.selectors import attachment_url
from chat.models import Attachment, Conversation, Message


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


class AttachmentInline(admin.TabularInline):
    """Photos as thumbnails that open full size, voice notes as players with their transcript."""

    model = Attachment
    extra = 0
    can_delete = False
    ordering = ("created_at",)
    fields = ("preview", "created_at", "message", "name", "source_format", "size_bytes", "transcript", "analysis")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    @admin.display(description="Photo / voice note")
    def preview(self, obj: Attachment) -> str:
        if obj.kind == Attachment.Kind.IMAGE:
            return format_html(
                '<a href="{}" target="_blank" rel="noopener"><img src="{}" alt="{}" height="96"></a><br>{}×{}',
                attachment_url(obj),
                attachment_url(obj, "thumb"),
                obj.name,
                obj.width,
                obj.height,
            )
        seconds = (obj.duration_ms or 0) / 1000
        return format_html(
            '<audio controls preload="none" src="{}"></audio><br>{:.1f} s · {}',
            attachment_url(obj),
            seconds,
            obj.transcript_source or "not transcribed",
        )


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
    search_fields = ("id", "messages__text", "attachments__transcript")
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
    inlines = (MessageInline, AttachmentInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        queryset = cast("QuerySet[Conversation]", super().get_queryset(request))
        return queryset.annotate(message_count=Count("messages"))

    @admin.display(ordering="message_count", description="Messages")
    def message_count(self, obj: Conversation) -> int:
        return getattr(obj, "message_count", 0)
