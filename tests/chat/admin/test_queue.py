"""The review queue: unreviewed conversations, the most urgent first, then the newest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from chat.models import Message
from tests.chat.admin.builders import add_feedback, add_message, add_reply, make_conversation

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:chat_conversation_review")


def ago(hours: int):
    return timezone.now() - timedelta(hours=hours)


@pytest.fixture
def queue_data(db) -> dict:
    routine = make_conversation(created_at=ago(1))
    add_reply(routine)
    broken = make_conversation(created_at=ago(2))
    add_reply(broken, status=Message.Status.INCOMPLETE, error_code="upstream_error")
    refused = make_conversation(created_at=ago(30))
    add_reply(
        refused,
        status=Message.Status.INCOMPLETE,
        error_code="upstream_error",
        error_detail="finish_reason=content_filter",
    )
    handoff = make_conversation(created_at=ago(40), handoff_requested_at=ago(40))
    add_message(handoff, author=Message.Author.SYSTEM, kind=Message.Kind.NOTICE, notice_code="handoff_requested")
    thumbs_down = make_conversation(created_at=ago(5))
    add_feedback(add_reply(thumbs_down))
    low_rating_old = make_conversation(created_at=ago(50), rating=2)
    good_rating = make_conversation(created_at=ago(3), rating=4)
    reviewed_bad = make_conversation(created_at=ago(1), rating=1, reviewed_at=timezone.now())
    return locals()


def test_queue_lists_unreviewed_conversations_most_urgent_first(admin_client, queue_data):
    response = admin_client.get(QUEUE)

    assert response.status_code == 200
    order = [c.pk for c in response.context["cl"].result_list]
    expected = ["thumbs_down", "low_rating_old", "handoff", "refused", "broken", "routine", "good_rating"]
    assert order == [queue_data[name].pk for name in expected]
    assert queue_data["reviewed_bad"].pk not in order


def test_queue_says_why_each_conversation_is_there(admin_client, queue_data):
    html = admin_client.get(QUEUE).content.decode()

    for reason in ("thumbs-down", "rated 2/5", "asked for a person", "refusal", "failed or incomplete reply"):
        assert reason in html
    assert "Review queue" in html and "All conversations" in html


def test_queue_filters_still_apply(admin_client, queue_data):
    response = admin_client.get(QUEUE, {"refusal": "yes"})

    assert [c.pk for c in response.context["cl"].result_list] == [queue_data["refused"].pk]


def test_marking_reviewed_from_the_queue_takes_it_out(admin_client, queue_data):
    target = queue_data["thumbs_down"]

    response = admin_client.post(QUEUE, {"action": "mark_reviewed", "_selected_action": [str(target.pk)]})

    assert response.status_code == 302 and response["Location"].endswith(QUEUE)
    order = [c.pk for c in admin_client.get(QUEUE).context["cl"].result_list]
    assert target.pk not in order
    target.refresh_from_db()
    assert target.reviewed_at is not None and target.reviewed_by.username == "admin"
