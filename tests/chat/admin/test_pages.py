"""The conversation list and page, through the Django test client as a superuser."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from chat.media.selectors import attachment_signature_valid, attachment_url
from chat.models import Conversation
from tests.chat.admin.builders import add_reply, make_conversation
from tests.chat.admin.conftest import HOSTILE, REASONING, TRANSCRIPT

pytestmark = pytest.mark.django_db

LIST = reverse("admin:chat_conversation_changelist")


def change_url(conversation: Conversation) -> str:
    return reverse("admin:chat_conversation_change", args=[conversation.pk])


def transcript_html(html: str) -> str:
    found = re.search(r'<section class="chat-transcript".*?</section>', html, re.S)
    assert found, "no transcript on the page"
    return found.group(0)


_SIGNED = re.compile(r"(/api/conversations/[0-9a-f-]+/attachments/([0-9a-f-]+)(?:/\w+)?)\?s=([^\"&]+)")


def signatures_checked(html: str) -> str:
    """`html` with every attachment link's signature checked and taken out. A signature holds the
    second it was made, so a test cannot make the same one again after the page was rendered."""

    def check(link: re.Match[str]) -> str:
        path, attachment_id, signature = link.groups()
        assert attachment_signature_valid(attachment_id, signature), link.group(0)
        return path

    return _SIGNED.sub(check, html)


def unsigned(url: str) -> str:
    return url.split("?", 1)[0]


def test_list_shows_counts_media_models_tokens_and_cost(admin_client, rich):
    add_reply(rich.conversation, model="gpt-5.2-mini", usage={"prompt_tokens": 10, "completion_tokens": 5})
    Conversation.objects.filter(pk=rich.conversation.pk).update(
        prompt_tokens=130, completion_tokens=35, cost=Decimal("0.0012")
    )

    response = admin_client.get(LIST)

    assert response.status_code == 200
    [row] = response.context["cl"].result_list
    assert row.message_count == 5  # chat messages only: not the summary or the notice
    assert row.has_media is True
    assert row.total_tokens == 165
    html = response.content.decode()
    assert "gpt-5.2, gpt-5.2-mini" in html
    assert "0.001200" in html


def test_list_never_shows_reasoning_or_message_text(admin_client, rich):
    html = admin_client.get(LIST).content.decode()

    assert REASONING not in html
    assert "alert(" not in html


def test_change_page_shows_the_whole_conversation_as_a_chat(admin_client, rich):
    response = admin_client.get(change_url(rich.conversation))

    assert response.status_code == 200
    transcript = transcript_html(response.content.decode())
    # Who said what, each side styled apart.
    for side in ("chat-msg-shopper", "chat-msg-bot", "chat-msg-staff", "chat-notice", "chat-memory"):
        assert side in transcript
    assert "Ana (staff)" in transcript and "Hi, Ana here to help" in transcript
    assert "Ana from our team joined the chat." in transcript
    assert '<details class="chat-memory">' in transcript and "MEMORY the shopper wants red sneakers" in transcript
    # The photo as a thumbnail linking to the full file; the voice note as a player with its words.
    links = signatures_checked(transcript)
    assert f'href="{unsigned(attachment_url(rich.photo))}"' in links
    assert f'src="{unsigned(attachment_url(rich.photo, "thumb"))}"' in links
    assert f'<audio controls preload="none" src="{unsigned(attachment_url(rich.note))}">' in links
    assert TRANSCRIPT in transcript


def test_change_page_shows_what_grounded_each_reply_and_what_it_cost(admin_client, rich):
    transcript = transcript_html(admin_client.get(change_url(rich.conversation)).content.decode())

    assert "gpt-5.2" in transcript and "tier default" in transcript and "endpoint primary" in transcript
    assert "120 in" in transcript and "30 out" in transcript
    assert "0.000630" in transcript and "410 ms" in transcript and "1900 ms" in transcript
    # Products with links to the catalog, tool calls with their arguments and results.
    assert ">Red Sneaker</a>" in transcript and "gone-product" in transcript and "not in the catalog" in transcript
    assert "product_search" in transcript
    assert "&quot;query&quot;: &quot;red sneakers&quot;" in transcript
    assert "&quot;handle&quot;: &quot;red-sneaker&quot;" in transcript
    # The shopper's verdict and the model's reasoning (staff only, this page only).
    assert "Thumbs down" in transcript and "Wrong product" in transcript and "Not the pair in my photo" in transcript
    assert REASONING in transcript


def test_message_text_is_escaped(admin_client, rich):
    html = admin_client.get(change_url(rich.conversation)).content.decode()

    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in html
    assert HOSTILE not in html


def test_the_page_needs_no_inline_style_or_script(admin_client, rich):
    response = admin_client.get(change_url(rich.conversation))

    transcript = transcript_html(response.content.decode())
    assert "style=" not in transcript and "<script" not in transcript
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "admin-chat/review.css" in response.content.decode()


# The file view is async: its queries run in another thread, which sees only committed rows.
@pytest.mark.django_db(transaction=True)
def test_thumbnail_and_voice_note_files_are_served_to_staff(admin_client, rich):
    thumb = admin_client.get(attachment_url(rich.photo, "thumb"))
    audio = admin_client.get(attachment_url(rich.note))

    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/mpeg"


def test_staff_may_pin_the_model_tier(admin_client):
    conversation = make_conversation()

    response = admin_client.post(change_url(conversation), {"model_tier": "premium", "staff_note": ""})

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.model_tier == "premium"


def test_a_conversation_without_messages_renders(admin_client):
    conversation = make_conversation()

    response = admin_client.get(change_url(conversation))

    assert response.status_code == 200
    assert "No messages." in response.content.decode()


def test_conversations_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get(reverse("admin:chat_conversation_add")).status_code == 403
