"""Reads for staff review: the signals that make a conversation worth a look, the list
annotations and the review queue. Everything is a subquery, so a page of conversations costs one
query however many messages they hold, and joins made by search or filters cannot inflate counts."""

from __future__ import annotations

from typing import Any

from django.db.models import (
    Aggregate,
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from chat.models import Attachment, Conversation, Feedback, Message

LOW_RATING = 2  # ratings at or below this put a conversation in the review queue

# A refusal's text is kept as the reply text; the reply is marked in its grounding, and a reply
# the provider's content filter cut has error_detail "finish_reason=content_filter".
# chat/replies.py marks a reply whose model sent a refusal with grounding["refusal"].
REFUSAL = Q(error_detail__contains="finish_reason=content_filter") | Q(grounding__refusal=True)
BROKEN_STATUSES = (Message.Status.FAILED, Message.Status.INCOMPLETE)

# Review queue order: an unhappy shopper first, then someone who asked for a person, then what
# the model would not say (content, maybe policy), then technical failures, then the rest.
PRIORITY_UNHAPPY = 1
PRIORITY_HANDOFF = 2
PRIORITY_REFUSAL = 3
PRIORITY_BROKEN = 4
PRIORITY_ROUTINE = 9


def bot_replies() -> QuerySet[Message]:
    """The bot's chat replies of the conversation in the enclosing query (OuterRef("pk"))."""
    return Message.objects.filter(conversation=OuterRef("pk"), author=Message.Author.BOT, kind=Message.Kind.CHAT)


def has_media() -> Exists:
    return Exists(Attachment.objects.filter(conversation=OuterRef("pk")))


def has_thumbs_down() -> Exists:
    return Exists(Feedback.objects.filter(conversation=OuterRef("pk"), value=Feedback.Value.DOWN))


def has_broken_reply() -> Exists:
    return Exists(bot_replies().filter(status__in=BROKEN_STATUSES))


def has_refusal() -> Exists:
    return Exists(bot_replies().filter(REFUSAL))


def used_model(model: str) -> Exists:
    return Exists(bot_replies().filter(model=model))


def _per_conversation(queryset: QuerySet[Any], aggregate: Aggregate) -> Subquery:
    """One aggregate over the enclosing conversation's rows of `queryset`, as a subquery."""
    grouped = queryset.order_by().values("conversation").annotate(result=aggregate).values("result")
    return Subquery(grouped[:1])


def conversations_annotate(queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Add what the conversation list shows and sorts by: message_count, has_media,
    has_thumbs_down, has_broken_reply, has_refusal, model_first/model_last/model_count (the
    bot's models, alphabetically), total_tokens and last_activity."""
    chat_messages = Message.objects.filter(conversation=OuterRef("pk"), kind=Message.Kind.CHAT)
    with_model = bot_replies().exclude(model="")
    return queryset.annotate(
        message_count=Coalesce(_per_conversation(chat_messages, Count("pk")), 0),
        has_media=has_media(),
        has_thumbs_down=has_thumbs_down(),
        has_broken_reply=has_broken_reply(),
        has_refusal=has_refusal(),
        model_first=_per_conversation(with_model, Min("model")),
        model_last=_per_conversation(with_model, Max("model")),
        model_count=Coalesce(_per_conversation(with_model, Count("model", distinct=True)), 0),
        total_tokens=F("prompt_tokens") + F("completion_tokens"),
        last_activity=Coalesce("last_message_at", "created_at"),
    )


def review_queue(queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Unreviewed conversations, annotated as by conversations_annotate plus `review_priority`
    (PRIORITY_*), most urgent first, then newest."""
    annotated = conversations_annotate(queryset.filter(reviewed_at__isnull=True))
    return annotated.annotate(
        review_priority=Case(
            When(Q(rating__lte=LOW_RATING) | Q(has_thumbs_down=True), then=Value(PRIORITY_UNHAPPY)),
            When(handoff_requested_at__isnull=False, then=Value(PRIORITY_HANDOFF)),
            When(has_refusal=True, then=Value(PRIORITY_REFUSAL)),
            When(has_broken_reply=True, then=Value(PRIORITY_BROKEN)),
            default=Value(PRIORITY_ROUTINE),
            output_field=IntegerField(),
        )
    ).order_by("review_priority", "-created_at")


def review_reasons(conversation: Conversation) -> list[str]:
    """Why an annotated conversation is worth a look, in words, most urgent first."""
    reasons = []
    if conversation.rating is not None and conversation.rating <= LOW_RATING:
        reasons.append(f"rated {conversation.rating}/5")
    if getattr(conversation, "has_thumbs_down", False):
        reasons.append("thumbs-down")
    if conversation.handoff_requested_at is not None:
        reasons.append("asked for a person")
    if getattr(conversation, "has_refusal", False):
        reasons.append("refusal")
    if getattr(conversation, "has_broken_reply", False):
        reasons.append("failed or incomplete reply")
    return reasons


def models_used() -> list[str]:
    """Every model that wrote a bot reply, for the list filter."""
    found = (
        Message.objects.filter(author=Message.Author.BOT, kind=Message.Kind.CHAT)
        .exclude(model="")
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )
    return list(found)


def conversations_deletion_preview(queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """What deleting these conversations removes: message_total (notices and summaries too),
    attachment_count and feedback_count per conversation."""
    every_message = Message.objects.filter(conversation=OuterRef("pk"))
    attachments = Attachment.objects.filter(conversation=OuterRef("pk"))
    feedback = Feedback.objects.filter(conversation=OuterRef("pk"))
    return queryset.annotate(
        message_total=Coalesce(_per_conversation(every_message, Count("pk")), 0),
        attachment_count=Coalesce(_per_conversation(attachments, Count("pk")), 0),
        feedback_count=Coalesce(_per_conversation(feedback, Count("pk")), 0),
    ).order_by("-created_at")
