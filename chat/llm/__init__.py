"""Model access: the OpenAI-compatible streaming client behind retries, failover and tools —
or, with no endpoint configured, the offline responder."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from chat.llm.client import Timeouts
from chat.llm.endpoints import endpoint_chain
from chat.llm.http import http_client
from chat.llm.offline import OfflineResponder
from chat.llm.pool import request_pool
from chat.llm.reply import ToolUsingResponder
from chat.llm.router import EndpointHealth, ModelRouter
from chat.llm.tools import registry
from chat.llm.types import ChatClient


def model_configured() -> bool:
    return bool(settings.LLM_BASE_URL)


@cache
def _health(threshold: int, cooldown: float) -> EndpointHealth:
    return EndpointHealth(threshold=threshold, cooldown=cooldown)


def endpoint_health() -> EndpointHealth:
    """Per process: which endpoints have been failing lately."""
    return _health(settings.LLM_COOLDOWN_FAILURES, settings.LLM_COOLDOWN_SECONDS)


def chat_client_get(*, model: str = "") -> ChatClient:
    """The responder for one turn, from settings read now (so a test or an operator can change
    them). `model` picks a tier's model for the primary endpoint; fallbacks keep their own."""
    if not model_configured():
        return OfflineResponder()
    router = ModelRouter(
        chain=endpoint_chain(model=model or None),
        http=http_client(),
        timeouts=Timeouts(first_token=settings.LLM_FIRST_TOKEN_TIMEOUT, idle=settings.LLM_IDLE_TIMEOUT),
        max_retries=settings.LLM_MAX_RETRIES,
        pool=request_pool(),
        health=endpoint_health(),
    )
    return ToolUsingResponder(
        client=router, tools=registry, max_rounds=settings.LLM_MAX_TOOL_ROUNDS, tool_timeout=settings.LLM_TOOL_TIMEOUT
    )
