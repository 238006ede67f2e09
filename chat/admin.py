"""Staff review of conversations in the Django admin.

- The list: every conversation with its signals (media, rating, thumbs-down, failures, models,
  tokens, cost), filters on each, search over message text and voice-note transcripts.
- The review queue (`review/`): unreviewed conversations, most urgent first (chat/review/selectors.py).
- The conversation page: the transcript as a chat, with what grounded each reply and what it
  cost; reviewers mark it reviewed, flag, tag and note it; staff with the change permission may
  pin the model tier.
- Actions (chat/review/admin_actions.py): mark reviewed, flag, export JSON/CSV for reviewers;
  deleting a shopper's data, files included, only with `delete_shopper_data`.

Sites (the storefronts embedding the widget) have their own admin in chat/site_admin.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone

from chat import site_admin  # noqa: F401  (registers SiteAdmin)
from chat.models import Conversation, Tag
from chat.review import filters
from chat.review.admin_actions import REVIEW_PERMISSION, ConversationActionsAdmin
from chat.review.selectors import conversations_annotate, review_queue, review_reasons
from chat.review.transcript import conversation_transcript

QUEUE_URL_NAME = "chat_conversation_review"
REVIEW_FIELDS = ("flagged", "tags", "staff_note")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)

    # Reviewers tag conversations, so they may see and create tags (the "+" next to the field).
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or request.user.has_perm(REVIEW_PERMISSION)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) or request.user.has_perm(REVIEW_PERMISSION)


LIST_DISPLAY = (
    "short_id",
    "site",
    "started",
    "last_active",
    "status",
    "message_count",
    "with_media",
    "rating",
    "flagged",
    "reviewed",
    "models_used",
    "total_tokens",
    "cost",
)


@admin.register(Conversation)
class ConversationAdmin(ConversationActionsAdmin):
    list_display = LIST_DISPLAY
    list_filter = (
        ("site", admin.RelatedOnlyFieldListFilter),
        "status",
        "flagged",
        filters.ReviewedFilter,
        filters.MediaFilter,
        filters.RatingFilter,
        filters.ThumbsDownFilter,
        filters.BrokenReplyFilter,
        filters.RefusalFilter,
        filters.HandoffFilter,
        ("assigned_to", admin.RelatedOnlyFieldListFilter),
        "tags",
        filters.ModelFilter,
        ("created_at", admin.DateFieldListFilter),
        filters.CreatedRangeFilter,
    )
    # Joins over messages and attachments: the admin adds DISTINCT when a search is on, and the
    # counts are subqueries (chat/review/selectors.py), so neither rows nor counts repeat.
    search_fields = ("messages__text", "attachments__transcript", "shopper_email", "=shopper_id")
    search_help_text = (
        "Searches what was said (message text, voice-note transcripts) and identified shoppers' email and id."
    )
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    filter_horizontal = ("tags",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "status",
                    "created_at",
                    "last_message_at",
                    "handoff_requested_at",
                    "assigned_to",
                    "closed_at",
                )
            },
        ),
        ("Shopper", {"fields": ("site", "language", "shopper_id", "shopper_email", "shopper_name")}),
        ("Shopper's rating", {"fields": ("rating", "rating_comment")}),
        ("Model and cost", {"fields": ("model_tier", "models_used", "prompt_tokens", "completion_tokens", "cost")}),
        ("Review", {"fields": ("review_state", *REVIEW_FIELDS)}),
    )

    # --- permissions (review and delete: ConversationActionsAdmin) ------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conversations start in the chat, never here

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Reviewers edit the review fields (tags, note, flag) with view + review_conversation.
        reviewer = self.has_review_permission(request) and request.user.has_perm("chat.view_conversation")
        return super().has_change_permission(request, obj) or reviewer

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        editable: set[str] = set()
        if super().has_change_permission(request, obj):
            editable.add("model_tier")
        if self.has_review_permission(request):
            editable.update(REVIEW_FIELDS)
        return [name for name in flatten_fieldsets(self.fieldsets) if name not in editable]

    # --- the list and the queue ------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        own = [path("review/", wrap(self.review_queue_view), name=QUEUE_URL_NAME), *self.action_urls()]
        return own + super().get_urls()  # before "<path:object_id>/", which would swallow them

    def in_queue(self, request: HttpRequest) -> bool:
        return request.resolver_match is not None and request.resolver_match.url_name == QUEUE_URL_NAME

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        # Not super(): it orders before the annotations that the queue's ordering needs exist.
        queryset = Conversation.objects.select_related("site")
        queryset = review_queue(queryset) if self.in_queue(request) else conversations_annotate(queryset)
        return queryset.order_by(*self.get_ordering(request))

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        return ("review_priority", "-created_at") if self.in_queue(request) else ("-created_at",)

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        if self.in_queue(request):
            return ("short_id", "why", *LIST_DISPLAY[1:])
        return LIST_DISPLAY

    def review_queue_view(self, request: HttpRequest) -> HttpResponse:
        context = {"title": "Review queue", "subtitle": "Unreviewed conversations, most urgent first", "in_queue": True}
        return self.changelist_view(request, extra_context=context)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(request, {"in_queue": False, **(extra_context or {})})

    @admin.display(description="Conversation")
    def short_id(self, obj: Conversation) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="Started", ordering="created_at")
    def started(self, obj: Conversation) -> str:
        return _when(obj.created_at)

    @admin.display(description="Last message", ordering="last_message_at")
    def last_active(self, obj: Conversation) -> str:
        return _when(obj.last_message_at) if obj.last_message_at else "—"

    @admin.display(description="Why", ordering="review_priority")
    def why(self, obj: Conversation) -> str:
        return ", ".join(review_reasons(obj)) or "—"

    @admin.display(description="Messages", ordering="message_count")
    def message_count(self, obj: Conversation) -> int:
        return int(getattr(obj, "message_count", 0))

    @admin.display(description="Media", boolean=True, ordering="has_media")
    def with_media(self, obj: Conversation) -> bool:
        return bool(getattr(obj, "has_media", False))

    @admin.display(description="Reviewed", boolean=True, ordering="reviewed_at")
    def reviewed(self, obj: Conversation) -> bool:
        return obj.reviewed_at is not None

    @admin.display(description="Models")
    def models_used(self, obj: Conversation) -> str:
        first, last = getattr(obj, "model_first", None), getattr(obj, "model_last", None)
        count = int(getattr(obj, "model_count", 0))
        if not first:
            return "—"
        shown = first if first == last else f"{first}, {last}"
        return shown if count <= 2 else f"{shown} +{count - 2}"

    @admin.display(description="Tokens", ordering="total_tokens")
    def total_tokens(self, obj: Conversation) -> int:
        return int(getattr(obj, "total_tokens", 0))

    @admin.display(description="Reviewed")
    def review_state(self, obj: Conversation) -> str:
        if obj.reviewed_at is None:
            return "Not yet"
        when = _when(obj.reviewed_at)
        return f"{when} by {obj.reviewed_by.get_username()}" if obj.reviewed_by else when

    # --- the conversation page -----------------------------------------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if obj is not None:
            context["transcript"] = conversation_transcript(conversation_id=obj.pk)
        context["can_review"] = self.has_review_permission(request)
        context["can_delete_shopper_data"] = self.has_delete_shopper_data_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)


def _when(moment: datetime) -> str:
    # Compact, so the list keeps its many columns on one screen.
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
