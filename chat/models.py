"""Conversations and their messages."""

from __future__ import annotations

import re
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from chat.media.storage import attachments_storage
from supportbot.models import TimeStampedModel


def site_key_new() -> str:
    return "pk_" + secrets.token_urlsafe(18)


ORIGIN_RE = r"^https?://[A-Za-z0-9.\-\[\]:]+$"


def origins_validate(value: str) -> None:
    for line in value.split():
        if not re.fullmatch(ORIGIN_RE, line) or line.endswith("/"):
            raise ValidationError(
                f"{line!r} is not an origin: write scheme://host[:port], e.g. https://shop.example.com, one per line."
            )


class Site(TimeStampedModel):
    """A shop's storefront that embeds the widget: who may embed it, how it looks, and how the
    bot behaves there. Blank settings fall back to the deployment's environment settings. The
    model endpoint and its API key stay in the environment: secrets never live in the database."""

    class Position(models.TextChoices):
        RIGHT = "right", "Bottom right"
        LEFT = "left", "Bottom left"

    public_key = models.CharField(max_length=40, unique=True, default=site_key_new, editable=False)
    name = models.CharField(max_length=100, help_text="The shop's name, shown in the chat header.")
    enabled = models.BooleanField(default=True, help_text="Off: the widget refuses to open on this site.")
    allowed_origins = models.TextField(
        blank=True,
        validators=[origins_validate],
        help_text="Pages allowed to embed the chat, one origin per line: https://shop.example.com",
    )
    # Appearance
    brand_color = models.CharField(
        max_length=7,
        default="#1f6feb",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", "A colour like #1f6feb.")],
    )
    position = models.CharField(max_length=8, choices=Position.choices, default=Position.RIGHT)
    language = models.CharField(
        max_length=8,
        blank=True,
        choices=settings.LANGUAGES,
        help_text="The chat's language. Blank: the shopper's browser language, if the chat speaks it.",
    )
    greeting = models.CharField(
        max_length=300, blank=True, help_text="Shown next to the launcher and at the top of a new chat."
    )
    # Behaviour
    system_prompt = models.TextField(blank=True, help_text="Blank: the built-in support assistant prompt.")
    contact = models.CharField(
        max_length=200, blank=True, help_text="How shoppers reach a person (email, phone, page)."
    )
    product_url = models.CharField(
        max_length=300,
        blank=True,
        help_text="Link of a product page with {handle}, e.g. https://shop.example.com/products/{handle}",
    )
    model = models.CharField(max_length=100, blank=True, help_text="Blank: LLM_MODEL.")
    model_quick = models.CharField(max_length=100, blank=True, help_text="Blank: LLM_MODEL_QUICK.")
    model_premium = models.CharField(max_length=100, blank=True, help_text="Blank: LLM_MODEL_PREMIUM.")
    # Feature switches
    photos_enabled = models.BooleanField(default=True)
    voice_enabled = models.BooleanField(default=True)
    handoff_enabled = models.BooleanField(default=True, help_text="Shoppers may ask for a person.")
    quick_tier_enabled = models.BooleanField(default=True)
    premium_tier_enabled = models.BooleanField(default=True)
    # Limits for the whole site (all its shoppers together); 0: no limit of the site's own.
    messages_per_minute = models.PositiveIntegerField(default=0)
    connections_max = models.PositiveIntegerField(default=0, help_text="Open chats at once.")
    uploads_per_hour = models.PositiveIntegerField(default=0)
    # Bumped to rotate the identify secret (derived from SECRET_KEY, never stored).
    secret_version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def origins(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.allowed_origins.split() if line.strip()]


class Tag(models.Model):
    """A label staff put on conversations ("refund", "sizing", "bug"…) to find them again."""

    name = models.CharField(max_length=40, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Conversation(TimeStampedModel):
    class Status(models.TextChoices):
        BOT = "bot", "With the bot"
        WAITING = "waiting", "Waiting for staff"
        STAFF = "staff", "With staff"
        CLOSED = "closed", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # SHA-256 of a random token kept in the shopper's session: the session can prove ownership,
    # a database dump cannot.
    owner_hash = models.CharField(max_length=64, db_index=True, editable=False)
    # The storefront the chat started on; none for the app's own chat page.
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT, related_name="conversations")
    # Who the shop says the shopper is (the widget's identify call, signed by the shop's server).
    shopper_id = models.CharField(max_length=200, blank=True, db_index=True)
    shopper_email = models.EmailField(blank=True)
    shopper_name = models.CharField(max_length=200, blank=True)
    language = models.CharField(max_length=8, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BOT, db_index=True)
    # Highest event sequence number whose effect is stored (see chat/journal.py).
    last_seq = models.PositiveBigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Staff may pin the model tier for this conversation; blank lets the rules decide.
    model_tier = models.CharField(
        max_length=16,
        blank=True,
        choices=[("quick", "Quick"), ("default", "Default"), ("premium", "Premium")],
        help_text="Leave blank to let the rules choose (see LLM_MODEL_QUICK / LLM_MODEL_PREMIUM).",
    )
    # Running totals over the bot's replies, for the admin list.
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    # Hand-off: who has the conversation while it is "with staff" (one person at a time).
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations_assigned",
    )
    handoff_requested_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The shopper's 1-5 satisfaction rating when the chat ended.
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)], db_index=True
    )
    rating_comment = models.TextField(blank=True)
    # Review by staff.
    reviewed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    flagged = models.BooleanField(default=False, db_index=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="conversations")
    staff_note = models.TextField(blank=True, help_text="Private: never shown to the shopper.")

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("review_conversation", "Can review conversations (mark reviewed, flag, tag, note, export)"),
            ("delete_shopper_data", "Can delete a shopper's data (messages, files, transcripts)"),
            ("handle_conversation", "Can take over live conversations"),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.id}"


class Message(TimeStampedModel):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"
        SYSTEM = "system", "System"

    class Author(models.TextChoices):
        SHOPPER = "shopper", "Shopper"
        BOT = "bot", "Bot"
        STAFF = "staff", "Staff"
        SYSTEM = "system", "System"

    class Status(models.TextChoices):
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped by the shopper"
        INCOMPLETE = "incomplete", "Incomplete"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        CHAT = "chat", "Chat message"
        SUMMARY = "summary", "Summary of earlier messages"
        # A state change shown in the transcript ("Ana joined the chat"); never sent to the model.
        NOTICE = "notice", "System notice"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CHAT, db_index=True)
    # For a summary: the last message seq it stands for (later turns send it instead of those).
    covers_through_seq = models.PositiveBigIntegerField(null=True, blank=True)
    # The event sequence number that introduced the message; summaries are not events.
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices)
    author = models.CharField(max_length=16, choices=Author.choices)
    # Staff messages: the display name the shopper saw, kept as it was then.
    author_name = models.CharField(max_length=150, blank=True)
    # Notices: what happened (handoff_requested, staff_joined, returned_to_bot, closed…).
    notice_code = models.CharField(max_length=40, blank=True)
    text = models.TextField(blank=True)
    # The OpenAI-style content parts sent to the model for this message (text, image_url, …).
    parts = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE, db_index=True)
    client_msg_id = models.UUIDField(null=True, blank=True)
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    # For bot replies: what produced them and what it cost.
    model = models.CharField(max_length=200, blank=True)
    usage = models.JSONField(default=dict, blank=True)
    cost = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.TextField(blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    grounding = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="chat_message_unique_seq"),
            models.UniqueConstraint(
                fields=["conversation", "client_msg_id"],
                condition=Q(client_msg_id__isnull=False),
                name="chat_message_unique_client_msg_id",
            ),
            models.CheckConstraint(
                condition=Q(kind="summary") | Q(seq__isnull=False), name="chat_message_seq_unless_summary"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.author}: {self.text[:60]}"


class Feedback(TimeStampedModel):
    """A shopper's thumbs up or down on one bot reply, with optional reasons."""

    class Value(models.TextChoices):
        UP = "up", "👍"
        DOWN = "down", "👎"

    REASONS = {
        "wrong_product": "Wrong product",
        "wrong_price": "Wrong price or stock",
        "misunderstood_media": "Didn't understand my photo or voice note",
        "rude": "Rude or unhelpful",
        "other": "Other",
    }

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="feedback")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="feedback")
    value = models.CharField(max_length=4, choices=Value.choices, db_index=True)
    reasons = models.JSONField(default=list, blank=True)  # keys of REASONS
    comment = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.get_value_display()} on {self.message_id}"


class Attachment(TimeStampedModel):
    """A photo or voice note a shopper uploaded, normalised (see chat/media/). It belongs to its
    conversation from the upload on, and to a message once a message names it."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Photo"
        AUDIO = "audio", "Voice note"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # The shopper's file name, cleaned, for display only; storage names come from ids.
    name = models.CharField(max_length=120, blank=True)
    source_format = models.CharField(max_length=40, blank=True)  # what arrived: JPEG, HEIF, WebM…
    size_bytes = models.PositiveIntegerField(default=0)  # as uploaded
    sha256 = models.CharField(max_length=64, blank=True)  # of the upload
    # The normalised file: an oriented, metadata-free image, or a trimmed, levelled voice note.
    file = models.FileField(storage=attachments_storage, max_length=255)
    content_type = models.CharField(max_length=40)
    # What the model gets: an image sized for it (audio: `file` itself).
    model_file = models.FileField(storage=attachments_storage, max_length=255, blank=True)
    model_content_type = models.CharField(max_length=40, blank=True)
    thumb = models.FileField(storage=attachments_storage, max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    transcript = models.TextField(blank=True)
    transcript_source = models.CharField(max_length=120, blank=True)  # e.g. "offline:tiny.en"
    # What we learnt from it: the closest catalog product for a photo, transcription errors.
    analysis = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["conversation", "message"], name="chat_attach_conv_msg")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name or self.id}"
