"""Reads of a turn written as SQL (chat/selectors.py), on SQLite and PostgreSQL alike (the suite
runs on both): the history a reply is sent with — the latest summary and the chat after it — and
the conversation with its site; and the snapshot a socket opens with."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.models import Conversation, Message, Site
from chat.selectors import (
    HISTORY_FIELDS,
    conversation_for_turn,
    conversation_snapshot,
    conversation_snapshot_unstored,
    history_messages,
)
from chat.sites import site_config
from tests.chat.admin.builders import add_message, add_reply, add_voice_note, make_conversation

pytestmark = pytest.mark.django_db


def _summary(conversation, *, covers: int, text: str) -> Message:
    return add_message(
        conversation, author=Message.Author.SYSTEM, kind=Message.Kind.SUMMARY, covers_through_seq=covers, text=text
    )


def test_the_latest_summary_and_the_chat_after_it_in_one_statement():
    conversation = make_conversation()
    add_message(conversation, text="Do you have red sneakers?")  # 1
    add_reply(conversation, text="Yes, the Red Sneaker.")  # 2
    _summary(conversation, covers=1, text="older summary")
    _summary(conversation, covers=2, text="latest summary")
    add_message(conversation, text="In size 42?")  # 3
    add_reply(conversation, text="", status=Message.Status.FAILED)  # 4: a failed reply, no text
    voice = add_message(conversation, text="")  # 5: a voice note alone
    add_voice_note(conversation, voice, transcript="size forty two")
    add_message(conversation, author=Message.Author.SYSTEM, kind=Message.Kind.NOTICE, text="Ana joined.")  # 6
    add_message(conversation, author=Message.Author.STAFF, author_name="Ana", text="Hi, Ana here")  # 7
    add_message(conversation, author=Message.Author.SYSTEM, text="an internal note")  # 8: role system
    add_message(conversation, text="")  # 9: nothing at all
    add_message(make_conversation(), text="another shopper's question")

    with CaptureQueriesContext(connection) as queries:
        summary, messages = history_messages(conversation_id=conversation.pk)
        # Every field a request is built from is loaded: reading them runs nothing more.
        read = [[getattr(message, field) for field in HISTORY_FIELDS] for message in [summary, *messages]]

    assert len(queries) == 1, [query["sql"] for query in queries]
    assert summary is not None and summary.text == "latest summary" and summary.covers_through_seq == 2
    assert [message.seq for message in messages] == [3, 5, 7]
    assert [message.text for message in messages] == ["In size 42?", "", "Hi, Ana here"]
    assert [bool(message.has_attachments) for message in messages] == [False, True, False]  # type: ignore[attr-defined]
    assert [message.author_name for message in messages] == ["", "", "Ana"]
    assert all(row[1] == conversation.pk for row in read)


def test_without_a_summary_every_chat_message_oldest_first():
    conversation = make_conversation()
    for seq in range(1, 13):  # past 9: ordered by number, not as text
        add_message(conversation, text=f"message {seq}")

    summary, messages = history_messages(conversation_id=str(conversation.pk))

    assert summary is None
    assert [message.seq for message in messages] == list(range(1, 13))


def test_a_summary_with_nothing_after_it_and_a_new_conversation():
    conversation = make_conversation()
    add_message(conversation, text="hello")
    _summary(conversation, covers=1, text="the shopper said hello")

    assert history_messages(conversation_id=conversation.pk)[1] == []
    assert history_messages(conversation_id=conversation.pk)[0] is not None
    assert history_messages(conversation_id=make_conversation().pk) == (None, [])


def test_the_conversation_for_a_turn_with_its_site():
    site = Site.objects.create(name="Northpeak", allowed_origins="https://shop.example.com", quick_tier_enabled=False)
    on_site = make_conversation(site=site, shopper_name="Ana", model_tier="premium", status=Conversation.Status.STAFF)
    own_page = make_conversation()

    with CaptureQueriesContext(connection) as queries:
        conversation = conversation_for_turn(conversation_id=str(on_site.pk))
    assert len(queries) == 2  # the conversation, its site
    # Read as a request built on the event loop reads them, where a query would be refused.
    with CaptureQueriesContext(connection) as queries:
        config = site_config(conversation.site)
        read = (conversation.status, conversation.shopper_name, conversation.model_tier, conversation.last_seq)
    assert len(queries) == 0
    assert read == ("staff", "Ana", "premium", 0)
    assert conversation.pk == on_site.pk and conversation.created_at == on_site.created_at
    assert (config.site_id, config.name, config.origins) == (site.pk, "Northpeak", ("https://shop.example.com",))
    assert config.enabled is True and config.tiers == {"default", "premium"}

    with CaptureQueriesContext(connection) as queries:
        assert conversation_for_turn(conversation_id=own_page.pk).site is None
    assert len(queries) == 1

    with pytest.raises(Conversation.DoesNotExist):
        conversation_for_turn(conversation_id="00000000-0000-4000-8000-000000000000")


def test_the_snapshot_of_a_new_conversation_without_the_database():
    conversation = make_conversation(rating=None)
    with CaptureQueriesContext(connection) as captured:
        unstored = conversation_snapshot_unstored(conversation)
    assert len(captured) == 0
    assert unstored == conversation_snapshot(conversation_id=conversation.pk)
    assert unstored is not None and unstored["messages"] == [] and unstored["seq"] == 0


def test_the_snapshot_needs_the_database_once_something_is_stored_or_staff_has_it():
    stored = make_conversation()
    add_message(stored, text="Hello?")
    Conversation.objects.filter(pk=stored.pk).update(last_seq=1)
    stored.refresh_from_db()
    assert conversation_snapshot_unstored(stored) is None
    with CaptureQueriesContext(connection) as captured:
        snapshot = conversation_snapshot(conversation_id=stored.pk, conversation=stored)
    assert [m["text"] for m in snapshot["messages"]] == ["Hello?"]
    assert not [q for q in captured.captured_queries if "chat_conversation" in q["sql"].split("WHERE")[0]]
    # Taken over before anything was said: the staff member's name is a read away.
    staffed = make_conversation(status=Conversation.Status.STAFF)
    assert conversation_snapshot_unstored(staffed) is None
