"""Exports as reviewers get them: the admin actions and the page's buttons, parsed back."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from chat.models import Message
from tests.chat.admin.builders import add_message, make_conversation
from tests.chat.admin.conftest import HOSTILE, REASONING, TRANSCRIPT

pytestmark = pytest.mark.django_db

LIST = reverse("admin:chat_conversation_changelist")


def export(client, action: str, *conversations):
    response = client.post(LIST, {"action": action, "_selected_action": [str(c.pk) for c in conversations]})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment; filename=")
    return response


def test_json_export_holds_conversations_messages_transcripts_and_feedback(admin_client, rich):
    other = make_conversation()
    add_message(other, text="second conversation")

    response = export(admin_client, "export_json", rich.conversation, other)

    assert response["Content-Type"].startswith("application/json")
    data = json.loads(response.content)
    by_id = {c["id"]: c for c in data["conversations"]}
    assert set(by_id) == {str(rich.conversation.pk), str(other.pk)}
    exported = by_id[str(rich.conversation.pk)]
    assert exported["rating"] == 2 and exported["status"] == "closed"
    texts = [m["text"] for m in exported["messages"]]
    assert texts[0] == HOSTILE and "Hi, Ana here to help" in texts
    assert [m["kind"] for m in exported["messages"]].count("summary") == 1
    voice = next(m for m in exported["messages"] if m["id"] == str(rich.voice.pk))
    assert voice["attachments"][0]["transcript"] == TRANSCRIPT
    assert voice["attachments"][0]["kind"] == "audio"
    question = next(m for m in exported["messages"] if m["id"] == str(rich.question.pk))
    assert question["attachments"][0]["name"] == "my-shoe.jpg"
    reply = next(m for m in exported["messages"] if m["id"] == str(rich.reply.pk))
    assert reply["feedback"]["value"] == "down" and reply["feedback"]["reasons"] == ["wrong_product"]
    assert reply["feedback"]["comment"] == "Not the pair in my photo"
    assert reply["grounding"]["tools"][0]["name"] == "product_search"
    assert reply["model"] == "gpt-5.2" and reply["usage"]["prompt_tokens"] == 120


def test_exports_leave_out_the_model_reasoning(admin_client, rich):
    for action in ("export_json", "export_csv"):
        assert REASONING not in export(admin_client, action, rich.conversation).content.decode()


def test_csv_export_has_a_row_per_message(admin_client, rich):
    response = export(admin_client, "export_csv", rich.conversation)

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == Message.objects.filter(conversation=rich.conversation).count()
    assert {row["conversation_id"] for row in rows} == {str(rich.conversation.pk)}
    by_id = {row["message_id"]: row for row in rows}
    assert by_id[str(rich.voice.pk)]["transcripts"] == TRANSCRIPT
    assert by_id[str(rich.question.pk)]["attachments"] == "image:my-shoe.jpg"
    reply = by_id[str(rich.reply.pk)]
    assert (reply["feedback"], reply["feedback_reasons"], reply["feedback_comment"]) == (
        "down",
        "wrong_product",
        "Not the pair in my photo",
    )
    assert reply["tools"] == "product_search" and reply["prompt_tokens"] == "120" and reply["cost"] == "0.000630"
    assert by_id[str(rich.staff.pk)]["author_name"] == "Ana"


def test_csv_cells_cannot_become_spreadsheet_formulas(admin_client):
    conversation = make_conversation()
    add_message(conversation, text='=HYPERLINK("http://evil.example","click")')

    rows = list(csv.DictReader(io.StringIO(export(admin_client, "export_csv", conversation).content.decode())))

    assert rows[0]["text"] == '\'=HYPERLINK("http://evil.example","click")'


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_the_page_buttons_export_one_conversation(admin_client, rich, fmt):
    page = admin_client.get(reverse("admin:chat_conversation_change", args=[rich.conversation.pk])).content.decode()
    url = reverse("admin:chat_conversation_export", args=[rich.conversation.pk, fmt])

    response = admin_client.get(url)

    assert f'href="{url}"' in page
    assert response.status_code == 200
    assert f"conversation-{rich.conversation.pk}.{fmt}" in response["Content-Disposition"]
    assert TRANSCRIPT in response.content.decode()


def test_unknown_export_format_is_not_found(admin_client, rich):
    url = reverse("admin:chat_conversation_export", args=[rich.conversation.pk, "xml"])
    assert admin_client.get(url).status_code == 404
