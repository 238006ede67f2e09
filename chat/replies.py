"""A bot reply, from the first event to the stored message.

build the request (history within budget, catalog facts, model tier) → stream it through the
model client (retries, failover, tools) → coalesce deltas to every client → store the reply once,
with usage and cost → announce its end. A Stop, a failure or a shutdown at any point still ends
in one stored reply and one `reply.end`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import translation
from django.utils.translation import gettext_lazy

from catalog.grounding import product_url_template, reply_cards, reply_cards_possible
from catalog.models import Product
from chat import compaction, context, metrics, services
from chat.coalesce import DeltaCoalescer
from chat.db import db_call
from chat.errors import ChatError, UpstreamStreamError, UpstreamUnavailable
from chat.events import STOP_MESSAGE_TYPE, channel_layer, control_group, event_emit, event_publish, seq_next
from chat.handoff import lobby_notify
from chat.journal import Event, get_journal
from chat.llm import chat_client_get
from chat.llm.offline import OfflineResponder
from chat.llm.pricing import usage_cost
from chat.llm.tokens import usage_estimate
from chat.llm.types import (
    ChatClient,
    ChatRequest,
    Finish,
    ModelSelected,
    Notice,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolResult,
    Usage,
)
from chat.models import Message
from chat.sites import SiteConfig, turn_site
from chat.tools import turn_conversation

logger = logging.getLogger(__name__)

DONE_MESSAGE_TYPE = "turn.done"
STORE_RETRY_PAUSES = (0.2, 0.5, 1.0)
STORE_FAILED = gettext_lazy(
    "This reply could not be saved because of a problem on our side. Your message is safe; please ask again."
)
MAX_CARDS = 6

# What the shopper is told when a reply does not end normally (the reply keeps its text).
FINISH_NOTICES = {
    "length": gettext_lazy("The reply was cut short because it got too long. Ask me to continue if you need more."),
    "content_filter": gettext_lazy("The reply was cut short by the assistant's content filter."),
}


class Turn:
    def __init__(
        self,
        *,
        conversation_id: str,
        lease_owner: str,
        site: SiteConfig | None = None,
        language: str = "",
    ) -> None:
        self.conversation_id = conversation_id
        self.site = site
        self.language = language or settings.LANGUAGE_CODE
        self.user_message: Message  # set by begin(), once the shopper's message is stored
        self.lease_owner = lease_owner
        self.seq = 0  # the highest seq this turn knows is allocated: a floor for the next
        self.reply_id = uuid.uuid4()
        self._channel: str | None = None
        self._control_tasks: list[asyncio.Task[None]] = []
        self._stream_task: asyncio.Task[None] | None = None
        self._stop_requested = False
        self._stop_reason = ""  # why, when not the shopper's Stop: "taken_over" by staff, "closed"
        # What the reply has produced so far.
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.usage: Usage | None = None
        self.tool_log: list[dict[str, Any]] = []
        self.request: ChatRequest | None = None
        self.unavailable: UpstreamUnavailable | None = None  # answered offline because of this
        self.tool_handles: list[str] = []
        self.retry_notices = 0
        self.refused = False  # the model sent a refusal (kept as the reply's text; staff can filter)
        self.finish_reason = ""
        self.first_token_ms: int | None = None
        self.grounding: dict[str, Any] = {}
        self.model = ""
        self.start_seq = 0
        self._started = 0.0
        self._coalescer: DeltaCoalescer
        self._plan: compaction.HistoryPlan | None = None
        self._products: asyncio.Future[list[Product]] | None = None

    def begin(
        self,
        *,
        user_message: Message,
        seq: int,
        plan: compaction.HistoryPlan | None = None,
        grounding: asyncio.Future[list[Product]] | None = None,
    ) -> None:
        """The shopper's message this turn answers, stored with `seq` (chat/turns.py); the
        history read with it and the catalog lookup started for it, if any."""
        self.user_message = user_message
        self.seq = seq
        self._plan = plan
        self._products = grounding

    # --- control: stop requests and the lease ------------------------------------------------

    async def listen(self) -> None:
        layer = channel_layer()
        self._channel = await layer.new_channel()
        await layer.group_add(control_group(self.conversation_id), self._channel)
        self._control_tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._keep_lease())]

    async def unlisten(self) -> None:
        listener, lease_keeper = self._control_tasks or (None, None)
        self._control_tasks = []
        if lease_keeper is not None:
            lease_keeper.cancel()
        if self._channel is not None:
            layer = channel_layer()
            await layer.group_discard(control_group(self.conversation_id), self._channel)
            # End the listener with a message rather than by cancelling it: a cancelled receive
            # leaves channels-redis's connection in a state later receives trip over.
            await layer.send(self._channel, {"type": DONE_MESSAGE_TYPE})
            self._channel = None
        for task in (listener, lease_keeper):
            if task is None:
                continue
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5)

    async def _listen(self) -> None:
        assert self._channel is not None
        layer, channel = channel_layer(), self._channel
        while True:
            message = await layer.receive(channel)
            if message.get("type") == DONE_MESSAGE_TYPE:
                return
            if message.get("type") == STOP_MESSAGE_TYPE:
                self._stop_requested = True
                self._stop_reason = str(message.get("reason") or "")
                if self._stream_task is not None:
                    self._stream_task.cancel()

    async def _keep_lease(self) -> None:
        """Renew the lease while the turn runs; a crashed process's lease simply runs out."""
        ttl = settings.CHAT_TURN_LEASE_SECONDS
        while True:
            await asyncio.sleep(ttl / 3)
            await get_journal().lease_renew(self.conversation_id, self.lease_owner, ttl)

    # --- the reply ---------------------------------------------------------------------------

    async def _emit(self, **event: Any) -> Event:
        sent = await event_emit(conversation_id=self.conversation_id, floor=self.seq, **event)
        self.seq = sent["seq"]
        return sent

    async def run(self) -> None:
        turn_conversation.set(self.conversation_id)
        # The turn runs in a context of its own (chat/turns.py): give it the site and language.
        turn_site.set(self.site)
        product_url_template.set(self.site.product_url if self.site else None)
        translation.activate(self.language)
        self._started = asyncio.get_running_loop().time()
        self.start_seq = (await self._emit(type="reply.start", message_id=str(self.reply_id)))["seq"]
        self._coalescer = DeltaCoalescer(
            publish=self._publish_delta,
            interval=settings.CHAT_COALESCE_MS / 1000,
            max_interval=settings.CHAT_COALESCE_MAX_MS / 1000,
        )
        try:
            status, error = await self._reply()
        except asyncio.CancelledError:
            # Not a Stop: the process is going away. Keep what was streamed.
            await self._finish(Message.Status.INCOMPLETE, None)
            raise
        await self._finish(status, error)

    async def _reply(self) -> tuple[str, ChatError | None]:
        """Stream the model's reply; return its status and the error to tell the shopper, if any."""
        try:
            request = self.request = await self._request()
            if self._stop_requested:
                return Message.Status.STOPPED, None
            try:
                await self._run(chat_client_get(model=request.model), request)
            except UpstreamUnavailable as exc:
                # Every endpoint failed before saying anything: the catalog can still answer.
                logger.warning("turn %s: model unavailable (%s); offline answer", self.conversation_id, exc.detail)
                self.unavailable = exc
                await self._run(OfflineResponder(unavailable=True), request)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._stop_requested and task is not None and not task.cancelling():
                return Message.Status.STOPPED, None
            raise
        except (UpstreamUnavailable, UpstreamStreamError) as exc:
            logger.warning("turn %s: model failed: %s", self.conversation_id, exc.detail)
            return self._broken_status(), exc
        except Exception as exc:
            logger.exception("turn %s failed", self.conversation_id)
            return self._broken_status(), ChatError(detail=repr(exc))
        if self.finish_reason in FINISH_NOTICES:
            notice = FINISH_NOTICES[self.finish_reason]
            return Message.Status.INCOMPLETE, UpstreamStreamError(notice, detail=f"finish_reason={self.finish_reason}")
        if not self.text:
            return Message.Status.FAILED, UpstreamStreamError(
                gettext_lazy("The assistant sent an empty reply. Please try asking again."), detail="empty reply"
            )
        return Message.Status.COMPLETE, None

    async def _run(self, client: ChatClient, request: ChatRequest) -> None:
        self.model = client.model
        # A task of its own, so a Stop can cancel the stream without cancelling the turn.
        self._stream_task = asyncio.create_task(self._stream(client, request))
        await self._stream_task

    def _broken_status(self) -> str:
        return Message.Status.INCOMPLETE if self.text else Message.Status.FAILED

    async def _request(self) -> ChatRequest:
        """The request for this reply; first folds old history into a summary if it outgrew its
        budget. Built here when the history was read with the message (chat/turns.py) and nothing
        is left to read; on a database thread otherwise."""
        products = await self._products_found()
        message, plan = self.user_message, self._plan
        if plan is not None and not plan.overflow:
            if context.turn_request_in_memory(plan=plan, products=products):
                # Under load a call to a database thread waits behind every turn's reads and writes
                # (seconds at 500 chats, docs/benchmarks.md); this one would read nothing.
                request, self.grounding = context.turn_request_build(user_message=message, plan=plan, products=products)
            else:
                request, self.grounding = await db_call(
                    context.turn_request_build, user_message=message, plan=plan, products=products, retry=True
                )
            return request
        prepare, budget = context.turn_request_prepare, settings.LLM_HISTORY_TOKENS
        history, built = await db_call(
            prepare, user_message=message, budget=budget, compact=True, products=products, retry=True
        )
        if built is None:
            text, model = await compaction.summary_write(summary=history.summary, overflow=history.overflow)
            covers = history.overflow[-1].seq
            assert covers is not None
            await db_call(
                services.summary_store,
                conversation_id=self.conversation_id,
                text=text,
                covers_through_seq=covers,
                model=model,
            )
            history, built = await db_call(
                prepare, user_message=message, budget=budget, compact=False, products=products, retry=True
            )
            assert built is not None
        request, self.grounding = built
        return request

    async def _products_found(self) -> list[Product] | None:
        """The catalog lookup started with the message, if any (None: look them up now)."""
        if self._products is None:
            return None
        try:
            return await self._products
        except Exception:
            logger.exception("turn %s: catalog lookup failed; trying again", self.conversation_id)
            return None

    async def _notify(self, notice: Notice) -> None:
        if notice.code == "retrying":
            self.retry_notices += 1
        event: dict[str, Any] = {"type": "reply.notice", "message_id": str(self.reply_id), "code": notice.code}
        event["message"] = notice.message
        if notice.position is not None:
            event["position"] = notice.position
        await self._emit(**event)

    async def _publish_delta(self, text: str) -> None:
        await self._emit(type="reply.delta", message_id=str(self.reply_id), text=text)

    async def _stream(self, client: ChatClient, request: ChatRequest) -> None:
        loop = asyncio.get_running_loop()
        async with contextlib.aclosing(client.stream(request, notify=self._notify)) as events:
            async for event in events:
                if isinstance(event, RefusalDelta):
                    self.refused = True
                if isinstance(event, TextDelta | RefusalDelta):
                    if self.first_token_ms is None:
                        self.first_token_ms = int((loop.time() - self._started) * 1000)
                    self.text.append(event.text)
                    self._coalescer.add(event.text)
                    if (due := self._coalescer.due()) is not None:
                        await due  # read on just before the frame goes (chat/coalesce.py)
                elif isinstance(event, ReasoningDelta):
                    self.reasoning.append(event.text)
                elif isinstance(event, Usage):
                    # A reply with tool rounds makes several requests: their usage adds up.
                    self.usage = event if self.usage is None else self.usage + event
                elif isinstance(event, Finish):
                    self.finish_reason = event.reason
                elif isinstance(event, ModelSelected):
                    self.model = event.model
                    self.grounding["endpoint"] = event.endpoint
                elif isinstance(event, ToolResult):
                    self.tool_handles += _handles_in(event.content)
                    self.tool_log.append(
                        {
                            "name": event.call.name,
                            "arguments": event.call.arguments,
                            "result": event.content[:2000],
                            "error": event.error,
                            "ms": event.ms,
                        }
                    )

    async def _finish(self, status: str, error: ChatError | None) -> None:
        """Flush the last text, store the reply once, then announce its end; always lets go of
        the conversation."""
        try:
            try:
                await self._coalescer.close()
            except Exception:
                logger.exception("turn %s: could not publish the last delta", self.conversation_id)
            reply_id = str(self.reply_id)
            cards = await self._cards()
            if cards:
                await self._emit(type="reply.products", message_id=reply_id, products=cards)
            if error is not None:
                await self._emit(**error.as_frame(), message_id=reply_id)
            end_seq = await seq_next(conversation_id=self.conversation_id, floor=self.seq)
            self.seq = end_seq
            grounding = dict(self.grounding)
            if self.reasoning:
                grounding["reasoning"] = "".join(self.reasoning)
            if self.tool_log:
                grounding["tools"] = self.tool_log
            if self.refused:
                grounding["refusal"] = True
            if cards:
                grounding["cards"] = cards
            recorded = error or self.unavailable
            usage, cost = await self._usage_and_cost()
            stored = await _with_retries(
                services.reply_store,
                conversation_id=self.conversation_id,
                message_id=self.reply_id,
                seq=self.start_seq,
                end_seq=end_seq,
                reply_to_id=self.user_message.id,
                text="".join(self.text),
                status=status,
                model=self.model,
                usage=usage,
                cost=cost,
                error_code=recorded.code
                if recorded
                else (self._stop_reason if status == Message.Status.STOPPED else ""),
                error_detail=recorded.detail if recorded else "",
                first_token_ms=self.first_token_ms,
                duration_ms=int((asyncio.get_running_loop().time() - self._started) * 1000),
                grounding=grounding,
            )
            if not stored:
                # The shopper's message is safe; the reply could not be kept. Say so, plainly.
                status = Message.Status.FAILED if status != Message.Status.COMPLETE else Message.Status.INCOMPLETE
                await self._emit(**ChatError(STORE_FAILED).as_frame(), message_id=reply_id)
                end_seq = await seq_next(conversation_id=self.conversation_id, floor=self.seq)
            end = {"type": "reply.end", "message_id": reply_id, "status": status, "usage": usage, "seq": end_seq}
            await event_publish(conversation_id=self.conversation_id, event=end)
            self._record(status, recorded.code if recorded else "", usage)
        finally:
            await self.unlisten()
            await get_journal().lease_release(self.conversation_id, self.lease_owner)
        # After the lease is free: the shopper's next message need not wait for the staff pages.
        await lobby_notify(conversation_id=self.conversation_id)

    def _record(self, status: str, error_code: str, usage: dict[str, Any]) -> None:
        """One structured log line per turn (never the conversation's content) and the counters."""
        fields = {
            "conversation": self.conversation_id,
            "reply": str(self.reply_id),
            "model": self.model,
            "endpoint": self.grounding.get("endpoint", ""),
            "tier": self.grounding.get("tier", ""),
            "retries": self.retry_notices,
            "ttft_ms": self.first_token_ms,
            "duration_ms": int((asyncio.get_running_loop().time() - self._started) * 1000),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "tools": len(self.tool_log),
            "status": status,
            "error": error_code or self._stop_reason,
        }
        logger.info("turn %s", json.dumps(fields, separators=(",", ":")))
        metrics.TURNS.labels(status=status).inc()
        if error_code:
            metrics.TURN_FAILURES.labels(code=error_code).inc()
        if self.unavailable is not None:
            metrics.OFFLINE_ANSWERS.inc()

    async def _usage_and_cost(self) -> tuple[dict[str, Any], Decimal | None]:
        """What the reply used and cost; estimated with tiktoken when the endpoint did not say
        (a stopped or cut stream never gets its usage chunk)."""
        usage = self.usage
        if usage is None and self.text and self.request is not None and self.model != "offline":
            # Tokenising is CPU work (and the first call loads the encoding): off the event loop.
            usage = await asyncio.to_thread(
                usage_estimate, messages=self.request.messages, completion_text="".join(self.text)
            )
        if usage is None:
            return {}, None
        return usage.as_dict(), usage_cost(model=self.model, usage=usage)

    async def _cards(self) -> list[dict[str, Any]]:
        """Cards for the catalog products the reply names (see catalog.grounding.reply_cards)."""
        text = "".join(self.text)
        if (
            not text
            or self.request is None
            or not reply_cards_possible(text=text, candidates=self.request.products, looked_up=self.tool_handles)
        ):
            return []  # most replies: no wait for a database thread before reply.end
        cards: list[dict[str, Any]] = await db_call(
            reply_cards,
            text=text,
            candidates=self.request.products,
            looked_up=self.tool_handles,
            limit=MAX_CARDS,
            retry=True,
        )
        return cards


async def _with_retries(write: Callable[..., Any], **kwargs: Any) -> bool:
    """Run a database write, retrying a briefly unavailable database; False if it never worked."""
    for attempt, pause in enumerate((*STORE_RETRY_PAUSES, None)):
        try:
            await db_call(write, **kwargs)
            return True
        except DatabaseError:
            logger.exception("storing a reply failed (attempt %d)", attempt + 1)
            if pause is None:
                return False
            await asyncio.sleep(pause)
    return False


def _handles_in(content: str) -> list[str]:
    """Product handles in a tool result (a product, or a list of them under "results")."""
    try:
        data = json.loads(content)
    except ValueError:
        return []
    items = data.get("results", [data]) if isinstance(data, dict) else data
    return [item["handle"] for item in items if isinstance(item, dict) and isinstance(item.get("handle"), str)]
