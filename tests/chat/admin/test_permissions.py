"""Who may see and do what: staff only; review actions need review_conversation; deleting a
shopper's data needs delete_shopper_data, whatever else the user holds."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from chat.models import Conversation, Tag
from tests.chat.admin.builders import add_message, make_conversation, staff_user

pytestmark = pytest.mark.django_db

LIST = reverse("admin:chat_conversation_changelist")
QUEUE = reverse("admin:chat_conversation_review")
VIEW = "chat.view_conversation"
CHANGE = "chat.change_conversation"
REVIEW = "chat.review_conversation"
DELETE = "chat.delete_conversation"
DELETE_DATA = "chat.delete_shopper_data"


def signed_in(*permissions: str, staff: bool = True) -> Client:
    client = Client()
    client.force_login(staff_user(*permissions, staff=staff))
    return client


def urls(conversation: Conversation) -> list[str]:
    pk = conversation.pk
    return [
        LIST,
        QUEUE,
        reverse("admin:chat_conversation_change", args=[pk]),
        reverse("admin:chat_conversation_export", args=[pk, "json"]),
        reverse("admin:chat_conversation_delete", args=[pk]),
    ]


def actions_offered(client: Client) -> set[str]:
    response = client.get(LIST)
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action is allowed
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
def test_only_staff_get_in(who):
    conversation = make_conversation()
    client = Client() if who == "anonymous" else signed_in(VIEW, REVIEW, DELETE_DATA, staff=False)

    for url in urls(conversation):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_viewer_sees_everything_but_changes_nothing():
    conversation = make_conversation()
    add_message(conversation, text="hello")
    client = signed_in(VIEW)

    assert client.get(LIST).status_code == 200
    assert client.get(QUEUE).status_code == 200
    page = client.get(reverse("admin:chat_conversation_change", args=[conversation.pk]))
    assert page.status_code == 200 and "Mark reviewed" not in page.content.decode()
    assert actions_offered(client) == set()


def test_staff_without_review_permission_cannot_mark_reviewed_or_export():
    conversation = make_conversation()
    client = signed_in(VIEW, CHANGE)
    pk = conversation.pk

    client.post(LIST, {"action": "mark_reviewed", "_selected_action": [str(pk)]})
    client.post(LIST, {"action": "flag", "_selected_action": [str(pk)]})
    export = client.post(LIST, {"action": "export_json", "_selected_action": [str(pk)]})
    assert "application/json" not in export["Content-Type"]
    assert client.post(reverse("admin:chat_conversation_reviewed", args=[pk])).status_code == 403
    for fmt in ("json", "csv"):
        assert client.get(reverse("admin:chat_conversation_export", args=[pk, fmt])).status_code == 403

    conversation.refresh_from_db()
    assert conversation.reviewed_at is None and conversation.flagged is False


def test_staff_with_change_but_not_review_permission_can_pin_the_tier_but_not_note():
    conversation = make_conversation()
    client = signed_in(VIEW, CHANGE)

    response = client.post(
        reverse("admin:chat_conversation_change", args=[conversation.pk]),
        {"model_tier": "quick", "staff_note": "sneaky", "flagged": "on"},
    )

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert (conversation.model_tier, conversation.staff_note, conversation.flagged) == ("quick", "", False)


def test_reviewer_marks_reviewed_flags_tags_and_notes_but_cannot_pin_the_tier():
    conversation = make_conversation()
    tag = Tag.objects.create(name="sizing")
    client = signed_in(VIEW, REVIEW)
    change = reverse("admin:chat_conversation_change", args=[conversation.pk])

    assert "Mark reviewed" in client.get(change).content.decode()
    marked = client.post(reverse("admin:chat_conversation_reviewed", args=[conversation.pk]))
    saved = client.post(
        change, {"model_tier": "premium", "staff_note": "Check sizes", "flagged": "on", "tags": [tag.pk]}
    )

    assert marked.status_code == 302 and saved.status_code == 302
    conversation.refresh_from_db()
    assert conversation.reviewed_at is not None and conversation.reviewed_by is not None
    assert (conversation.staff_note, conversation.flagged, conversation.model_tier) == ("Check sizes", True, "")
    assert list(conversation.tags.all()) == [tag]
    assert actions_offered(client) == {
        "mark_reviewed",
        "mark_unreviewed",
        "flag",
        "unflag",
        "export_json",
        "export_csv",
    }


def test_reviewer_can_put_a_conversation_back_in_the_queue():
    conversation = make_conversation()
    client = signed_in(VIEW, REVIEW)
    url = reverse("admin:chat_conversation_reviewed", args=[conversation.pk])

    client.post(url)
    client.post(url, {"reviewed": "0"})

    conversation.refresh_from_db()
    assert conversation.reviewed_at is None and conversation.reviewed_by is None
    assert client.get(url).status_code == 405


def test_django_delete_permission_alone_cannot_delete():
    conversation = make_conversation()
    client = signed_in(VIEW, CHANGE, DELETE)
    delete = reverse("admin:chat_conversation_delete", args=[conversation.pk])

    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert "delete_selected" not in actions_offered(client)
    assert "delete_shopper_data" not in actions_offered(client)
    client.post(LIST, {"action": "delete_selected", "_selected_action": [str(conversation.pk)], "post": "yes"})
    client.post(LIST, {"action": "delete_shopper_data", "_selected_action": [str(conversation.pk)], "post": "yes"})

    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_delete_shopper_data_permission_offers_the_privacy_delete_only():
    client = signed_in(VIEW, DELETE_DATA)
    make_conversation()

    offered = actions_offered(client)

    assert "delete_shopper_data" in offered and "delete_selected" not in offered
