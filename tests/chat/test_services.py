"""Writes to conversations (chat/services.py) that are hand-written SQL, on SQLite and PostgreSQL
alike (the suite runs on both)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chat.models import Conversation
from chat.services import conversation_advance
from tests.chat.admin.builders import make_conversation

pytestmark = pytest.mark.django_db


def test_the_stored_mark_only_moves_up_and_usage_adds_up():
    conversation, other = make_conversation(), make_conversation()
    before = conversation.updated_at

    conversation_advance(conversation_id=conversation.pk, seq=5)
    conversation_advance(conversation_id=str(conversation.pk), seq=3)  # a late writer: no step back
    conversation_advance(conversation_id=conversation.pk, seq=7, usage=(1200, 300, Decimal("0.003400")))
    conversation_advance(conversation_id=conversation.pk, seq=6, usage=(800, 100, Decimal("0.001250")))

    conversation.refresh_from_db()
    assert conversation.last_seq == 7
    assert (conversation.prompt_tokens, conversation.completion_tokens) == (2000, 400)
    assert conversation.cost == Decimal("0.004650")
    assert conversation.last_message_at is not None and conversation.updated_at > before
    untouched = Conversation.objects.get(pk=other.pk)
    assert (untouched.last_seq, untouched.prompt_tokens, untouched.cost) == (0, 0, Decimal(0))
    assert untouched.last_message_at is None
