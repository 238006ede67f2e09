"""Building a turn's request (chat/context.py): which requests the event loop may build itself."""

from __future__ import annotations

import uuid

from catalog.models import Product
from chat.compaction import HistoryPlan
from chat.context import turn_request_in_memory
from chat.models import Message


def _message(*parts: dict[str, str]) -> Message:
    return Message(role=Message.Role.USER, author=Message.Author.SHOPPER, text="hi", parts=list(parts))


def test_a_request_is_built_in_memory_unless_products_are_missing_or_files_are_attached():
    text = _message({"type": "text", "text": "hi"})
    photo = _message({"type": "image", "attachment": str(uuid.uuid4())})
    voice = _message({"type": "audio", "attachment": str(uuid.uuid4())})
    products = [Product(handle="red-beanie", title="Red Beanie")]

    def plan(*messages: Message) -> HistoryPlan:
        return HistoryPlan(summary=None, messages=list(messages), overflow=[])

    assert turn_request_in_memory(plan=plan(text, text), products=products)
    assert turn_request_in_memory(plan=plan(text), products=[])  # found nothing: nothing to read
    assert not turn_request_in_memory(plan=plan(text), products=None)  # still to look up
    # Photos and voice notes anywhere in the history: their files are read for the request.
    assert not turn_request_in_memory(plan=plan(photo, text), products=products)
    assert not turn_request_in_memory(plan=plan(text, voice), products=products)
