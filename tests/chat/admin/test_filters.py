"""Each list filter and the search pick the right conversations, once each."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from chat.models import Conversation, Message, Tag
from tests.chat.admin.builders import (
    add_feedback,
    add_message,
    add_photo,
    add_reply,
    add_voice_note,
    make_conversation,
    staff_user,
)

pytestmark = pytest.mark.django_db

LIST = reverse("admin:chat_conversation_changelist")


def day(month: int, date: int) -> datetime:
    return timezone.make_aware(datetime(2025, month, date, 12, 0))


@pytest.fixture
def convs(db) -> SimpleNamespace:
    """One conversation per signal, so each filter has exactly one right answer (or a known few)."""
    ana = staff_user(staff=True)
    refund = Tag.objects.create(name="refund")
    plain = make_conversation(created_at=day(1, 10))
    add_message(plain, text="hello there")
    add_reply(plain, model="gpt-5.2")

    waiting = make_conversation(
        status=Conversation.Status.WAITING, handoff_requested_at=day(2, 1), created_at=day(2, 1)
    )
    add_message(waiting, text="I want a human")

    media = make_conversation(created_at=day(3, 5))
    add_photo(media, add_message(media, text="look at this"))
    add_voice_note(media, add_message(media, text=""), transcript="the zipper broke on day one")

    rated = make_conversation(status=Conversation.Status.CLOSED, rating=1, flagged=True, created_at=day(4, 20))
    rated.tags.add(refund)

    disliked = make_conversation(assigned_to=ana, status=Conversation.Status.STAFF, created_at=day(5, 2))
    add_feedback(add_reply(disliked, model="claude-x"), reasons=["rude"])

    broken = make_conversation(created_at=day(6, 7))
    add_reply(broken, status=Message.Status.FAILED, text="", error_code="upstream_error", model="gpt-5.2")

    refused = make_conversation(created_at=day(7, 9))
    add_reply(
        refused,
        status=Message.Status.INCOMPLETE,
        text="I can't help with that.",
        error_code="upstream_error",
        error_detail="finish_reason=content_filter",
    )

    reviewed = make_conversation(reviewed_at=day(8, 1), rating=5, created_at=day(8, 1))
    return SimpleNamespace(**{k: v for k, v in locals().items() if isinstance(v, Conversation)}, ana=ana, tag=refund)


def listed(client, **params) -> list[Conversation]:
    response = client.get(LIST, params)
    assert response.status_code == 200, response
    assert "e" not in response.wsgi_request.GET
    return list(response.context["cl"].result_list)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "waiting"}, ["waiting"]),
        ({"flagged__exact": "1"}, ["rated"]),
        ({"reviewed": "yes"}, ["reviewed"]),
        ({"media": "yes"}, ["media"]),
        ({"rating": "1"}, ["rated"]),
        ({"rating": "5"}, ["reviewed"]),
        ({"thumbs_down": "yes"}, ["disliked"]),
        ({"broken": "yes"}, ["refused", "broken"]),  # a content-filter cut is also an incomplete reply
        ({"refusal": "yes"}, ["refused"]),
        ({"handoff": "yes"}, ["waiting"]),
        ({"model": "claude-x"}, ["disliked"]),
        ({"model": "gpt-5.2"}, ["refused", "broken", "plain"]),  # refused: the builder's default model
        ({"created_from": "2025-03-01", "created_to": "2025-05-02"}, ["disliked", "rated", "media"]),
        ({"created_from": "2025-07-09"}, ["reviewed", "refused"]),
        ({"created_at__year": "2025", "created_at__month": "2"}, ["waiting"]),
        ({"created_at__gte": "2025-06-01 00:00:00+00:00", "created_at__lt": "2025-07-01 00:00:00+00:00"}, ["broken"]),
    ],
)
def test_filter_picks_the_right_conversations(admin_client, convs, params, expected):
    assert listed(admin_client, **params) == [getattr(convs, name) for name in expected]


def test_related_filters_pick_the_right_conversations(admin_client, convs):
    assert listed(admin_client, assigned_to__id__exact=convs.ana.pk) == [convs.disliked]
    assert listed(admin_client, tags__id__exact=convs.tag.pk) == [convs.rated]


@pytest.mark.parametrize(
    ("params", "excluded"),
    [
        ({"reviewed": "no"}, "reviewed"),
        ({"media": "no"}, "media"),
        ({"thumbs_down": "no"}, "disliked"),
    ],
)
def test_no_filters_leave_out_the_others(admin_client, convs, params, excluded):
    shown = listed(admin_client, **params)
    assert getattr(convs, excluded) not in shown and len(shown) == 7


def test_not_rated_filter(admin_client, convs):
    assert {c.rating for c in listed(admin_client, rating="none")} == {None}
    assert len(listed(admin_client, rating="none")) == 6


def test_list_is_newest_first(admin_client, convs):
    shown = listed(admin_client)
    assert shown == sorted(shown, key=lambda c: c.created_at, reverse=True) and len(shown) == 8


def test_search_finds_message_text_once_with_true_counts(admin_client, convs):
    add_message(convs.plain, text="hello again")  # a second match in the same conversation

    shown = listed(admin_client, q="hello")

    assert shown == [convs.plain]
    row: Any = shown[0]  # message_count is an annotation, unknown to mypy
    assert row.message_count == 3


def test_search_finds_voice_note_transcripts(admin_client, convs):
    assert listed(admin_client, q="zipper broke") == [convs.media]


def test_filters_and_search_combine(admin_client, convs):
    assert listed(admin_client, q="zipper", media="yes", created_from="2025-03-01") == [convs.media]
    assert listed(admin_client, q="zipper", reviewed="yes") == []


def test_bad_date_range_is_refused_not_crashed(admin_client, convs):
    response = admin_client.get(LIST, {"created_from": "yesterday"})
    assert response.status_code == 302 and "e=1" in response["Location"]


def test_filter_counts_render(admin_client, convs):
    response = admin_client.get(LIST, {"_facets": "1", "q": "zipper"})

    assert response.status_code == 200
    assert "Yes (1)" in response.content.decode()  # e.g. photos or voice notes: the one match
