"""Model access: the OpenAI-compatible streaming client, or the offline responder."""

from __future__ import annotations

from django.conf import settings

from chat.llm.client import Endpoint, OpenAIChatClient, Timeouts
from chat.llm.http import http_client
from chat.llm.offline import OfflineResponder
from chat.llm.types import ChatClient


def model_configured() -> bool:
    return bool(settings.LLM_BASE_URL)


def chat_client_get() -> ChatClient:
    """The client for this turn, from settings read now (so a test or an operator can change them)."""
    if not model_configured():
        return OfflineResponder()
    return OpenAIChatClient(
        endpoint=Endpoint(base_url=settings.LLM_BASE_URL, api_key=settings.LLM_API_KEY, model=settings.LLM_MODEL),
        http=http_client(),
        timeouts=Timeouts(first_token=settings.LLM_FIRST_TOKEN_TIMEOUT, idle=settings.LLM_IDLE_TIMEOUT),
        max_completion_tokens=settings.LLM_MAX_COMPLETION_TOKENS,
    )
