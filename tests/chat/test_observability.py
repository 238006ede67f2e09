"""One structured log line per turn, without what the shopper wrote, and counters that move."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client import REGISTRY

from tests.chat.shopper import Shopper, browser_session
from tests.fakes import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_each_turn_logs_one_line_of_facts_and_counts(fake_openai, caplog):
    fake_openai.enqueue(Script.stream("Your parcel is on its way."))
    before = sample("supportbot_turns_total", status="complete")
    sockets = sample("supportbot_sockets", kind="shopper")
    shopper = Shopper(await browser_session())
    await shopper.connect()
    assert sample("supportbot_sockets", kind="shopper") == sockets + 1
    with caplog.at_level(logging.INFO, logger="chat.replies"):
        await shopper.turn("I live at 42 Elm Street, where is my parcel?")
    await shopper.disconnect()
    assert sample("supportbot_sockets", kind="shopper") == sockets

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("turn {")]
    assert len(lines) == 1
    fields = json.loads(lines[0].removeprefix("turn "))
    assert fields["model"] == "gpt-5.2" and fields["status"] == "complete" and fields["retries"] == 0
    assert fields["ttft_ms"] is not None and fields["completion_tokens"] > 0
    assert "Elm Street" not in lines[0] and "parcel" not in lines[0]
    assert sample("supportbot_turns_total", status="complete") == before + 1


async def test_failures_are_counted_by_kind(fake_openai, settings):
    settings.LLM_MAX_RETRIES = 0
    fake_openai.enqueue(Script.cut("Half an ans"))
    before = sample("supportbot_turn_failures_total", code="upstream_error")
    shopper = Shopper(await browser_session())
    await shopper.connect()
    await shopper.turn("Tell me about tents")
    await shopper.disconnect()
    assert sample("supportbot_turn_failures_total", code="upstream_error") == before + 1
