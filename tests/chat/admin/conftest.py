"""A conversation with everything the admin shows: photos, a voice note, grounded replies with
tool calls and reasoning, feedback, a summary, notices and a staff member's message."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chat.models import Attachment, Conversation, Message
from tests.catalog.factories import make_product
from tests.chat.admin.builders import (
    add_feedback,
    add_message,
    add_photo,
    add_reply,
    add_voice_note,
    make_conversation,
)

REASONING = "SECRET-REASONING the shopper wants the red pair"
HOSTILE = "Do you have these <script>alert('pwned')</script> in red?"
TRANSCRIPT = "I need them in size forty two"


@dataclass
class Rich:
    conversation: Conversation
    question: Message
    reply: Message
    voice: Message
    staff: Message
    photo: Attachment
    note: Attachment


@pytest.fixture
def rich(db) -> Rich:
    make_product(handle="red-sneaker", title="Red Sneaker")
    conversation = make_conversation(status=Conversation.Status.CLOSED, rating=2, rating_comment="Meh")
    question = add_message(conversation, text=HOSTILE, grounding={"context": {"product": "red-sneaker"}})
    photo = add_photo(conversation, question, name="my-shoe.jpg")
    reply = add_reply(
        conversation,
        text="The Red Sneaker comes in sizes 38 to 45.",
        grounding={
            "products": ["red-sneaker", "gone-product"],
            "tier": "default",
            "endpoint": "primary",
            "tools": [
                {
                    "name": "product_search",
                    "arguments": '{"query": "red sneakers"}',
                    "result": '{"results": [{"handle": "red-sneaker", "title": "Red Sneaker"}]}',
                    "error": False,
                    "ms": 12,
                }
            ],
            "cards": [{"handle": "red-sneaker", "title": "Red Sneaker"}],
            "reasoning": REASONING,
        },
    )
    add_feedback(reply, reasons=["wrong_product"], comment="Not the pair in my photo")
    voice = add_message(conversation, text="")
    note = add_voice_note(conversation, voice, transcript=TRANSCRIPT)
    add_message(
        conversation, kind=Message.Kind.SUMMARY, covers_through_seq=2, text="MEMORY the shopper wants red sneakers"
    )
    add_message(
        conversation,
        author=Message.Author.SYSTEM,
        kind=Message.Kind.NOTICE,
        notice_code="staff_joined",
        text="Ana from our team joined the chat.",
    )
    staff = add_message(conversation, author=Message.Author.STAFF, author_name="Ana", text="Hi, Ana here to help")
    return Rich(conversation, question, reply, voice, staff, photo, note)


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """Users here sign in with force_login or admin_client: no need for a slow password hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
