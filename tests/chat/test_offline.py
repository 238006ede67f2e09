"""With no model endpoint, the offline responder answers from the catalog and says what it is."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command

from chat.models import Message
from tests.chat.shopper import Shopper, browser_session, reply_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


async def test_offline_reply_says_no_model_is_configured_and_lists_matching_products(offline):
    await database_sync_to_async(call_command)("load_demo_catalog", verbosity=0)
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    frames = await shopper.turn("Do you have a rain jacket?")
    text = reply_text(frames)
    assert "no AI model is configured" in text
    assert "Cascade 2.5L Rain Jacket" in text and "159.00" in text
    assert frames[-1]["status"] == "complete"
    bot = await database_sync_to_async(lambda: Message.objects.get(conversation_id=conversation["id"], author="bot"))()
    assert bot.model == "offline" and bot.grounding["products"][0] == "cascade-rain-jacket"
    await shopper.disconnect()


async def test_offline_reply_without_a_match_suggests_what_to_ask(offline):
    shopper = Shopper(await browser_session())
    await shopper.connect()
    text = reply_text(await shopper.turn("qwertyuiop"))
    assert "no AI model is configured" in text and "couldn't find" in text
    await shopper.disconnect()
