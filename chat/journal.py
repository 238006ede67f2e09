"""The conversation journal: sequence numbers, recent events for resume, and turn leases.

Every event sent to a conversation's clients gets a sequence number from here and is kept for a
while, so a client that was away can ask for what it missed — including the rest of a reply that
is still streaming, which lives nowhere else until the reply is stored.

Two backends with one interface: process memory (the default, one process) and Redis (when
REDIS_URL is set), so that several Daphne processes share one journal and a shopper can resume on
any of them. The database stays the source of truth: the journal is seeded from
`Conversation.last_seq` and only vouches for the events it still holds (`since()` returns None
otherwise, and the caller falls back to a snapshot from the database).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

import msgspec
import redis.asyncio as aioredis
from django.conf import settings

from chat.layers import redis_retry

Event = dict[str, Any]


class Journal(Protocol):
    async def next_seq(self, conversation_id: str, *, floor: int) -> int:
        """Allocate the next sequence number; never at or below `floor` (the stored last_seq)."""

    async def record(self, conversation_id: str, event: Event) -> None:
        """Keep an event (which carries its `seq`) for later `since()` calls."""

    async def since(self, conversation_id: str, after_seq: int) -> list[Event] | None:
        """Events after `after_seq` in order, or None if the journal cannot vouch it has them all."""

    async def lease_acquire(self, conversation_id: str, owner: str, ttl: float) -> bool: ...

    async def lease_renew(self, conversation_id: str, owner: str, ttl: float) -> bool: ...

    async def lease_release(self, conversation_id: str, owner: str) -> None: ...


@dataclass
class _Entry:
    seq: int
    floor: int  # events at or below this are not kept
    events: deque[Event] = field(default_factory=deque)
    expires: float = 0.0


class MemoryJournal:
    """One process's journal. Entries expire after CHAT_JOURNAL_TTL_SECONDS without use."""

    def __init__(self, *, ttl: float, max_events: int) -> None:
        self._ttl = ttl
        self._max_events = max_events
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._leases: dict[str, tuple[str, float]] = {}

    def _touch(self, conversation_id: str) -> _Entry | None:
        now = time.monotonic()
        # Entries are kept in least-recently-used order, so expired ones sit at the front.
        while self._entries:
            oldest_id, oldest = next(iter(self._entries.items()))
            if oldest.expires > now:
                break
            del self._entries[oldest_id]
        entry = self._entries.get(conversation_id)
        if entry is not None:
            entry.expires = now + self._ttl
            self._entries.move_to_end(conversation_id)
        return entry

    async def next_seq(self, conversation_id: str, *, floor: int) -> int:
        entry = self._touch(conversation_id)
        if entry is None:
            entry = _Entry(seq=floor, floor=floor, expires=time.monotonic() + self._ttl)
            self._entries[conversation_id] = entry
        elif entry.seq < floor:
            entry.seq = entry.floor = floor
            entry.events.clear()
        entry.seq += 1
        return entry.seq

    async def record(self, conversation_id: str, event: Event) -> None:
        entry = self._touch(conversation_id)
        if entry is None:
            return
        entry.events.append(event)
        while len(entry.events) > self._max_events:
            entry.floor = entry.events.popleft()["seq"]

    async def since(self, conversation_id: str, after_seq: int) -> list[Event] | None:
        entry = self._touch(conversation_id)
        if entry is None or after_seq < entry.floor:
            return None
        return [event for event in entry.events if event["seq"] > after_seq]

    async def lease_acquire(self, conversation_id: str, owner: str, ttl: float) -> bool:
        holder = self._leases.get(conversation_id)
        if holder is not None and holder[0] != owner and holder[1] > time.monotonic():
            return False
        self._leases[conversation_id] = (owner, time.monotonic() + ttl)
        return True

    async def lease_renew(self, conversation_id: str, owner: str, ttl: float) -> bool:
        holder = self._leases.get(conversation_id)
        if holder is None or holder[0] != owner:
            return False
        self._leases[conversation_id] = (owner, time.monotonic() + ttl)
        return True

    async def lease_release(self, conversation_id: str, owner: str) -> None:
        holder = self._leases.get(conversation_id)
        if holder is not None and holder[0] == owner:
            del self._leases[conversation_id]


# KEYS[1] journal hash {n: last seq, f: floor}; ARGV: floor from the database, ttl seconds.
_NEXT_SEQ = """
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '-1')
local floor = tonumber(ARGV[1])
if n < floor then
  n = floor
  redis.call('HSET', KEYS[1], 'f', floor)
  redis.call('DEL', KEYS[2])
end
n = n + 1
redis.call('HSET', KEYS[1], 'n', n)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return n
"""
# KEYS[1] journal hash, KEYS[2] event sorted set; ARGV: seq, event json, max events, ttl.
_RECORD = """
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  local last = redis.call('ZRANGE', KEYS[2], excess - 1, excess - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  redis.call('HSET', KEYS[1], 'f', last[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""
_LEASE_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_LEASE_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisJournal:
    """The journal shared by every process through Redis (sorted set of events per conversation)."""

    def __init__(self, *, url: str, ttl: int, max_events: int) -> None:
        self._url = url
        self._ttl = ttl
        self._max_events = max_events
        # redis-py connections belong to the event loop that made them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            # A dropped connection (a Redis restart) is reconnected and the command retried.
            client = aioredis.Redis.from_url(self._url, retry=redis_retry())
            self._clients[loop] = client
        return client

    @staticmethod
    def _keys(conversation_id: str) -> list[str]:
        return [f"sb:j:{conversation_id}", f"sb:j:{conversation_id}:e"]

    async def next_seq(self, conversation_id: str, *, floor: int) -> int:
        result = await self._redis().eval(_NEXT_SEQ, 2, *self._keys(conversation_id), floor, self._ttl)
        return int(result)

    async def record(self, conversation_id: str, event: Event) -> None:
        payload = msgspec.json.encode(event)
        keys = self._keys(conversation_id)
        await self._redis().eval(_RECORD, 2, *keys, event["seq"], payload, self._max_events, self._ttl)

    async def since(self, conversation_id: str, after_seq: int) -> list[Event] | None:
        head, events_key = self._keys(conversation_id)
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.hget(head, "f")
            pipe.zrangebyscore(events_key, f"({after_seq}", "+inf")
            floor, rows = await pipe.execute()
        if floor is None or after_seq < int(floor):
            return None
        return [msgspec.json.decode(row) for row in rows]

    async def lease_acquire(self, conversation_id: str, owner: str, ttl: float) -> bool:
        key = f"sb:lease:{conversation_id}"
        return bool(await self._redis().set(key, owner, nx=True, px=int(ttl * 1000)))

    async def lease_renew(self, conversation_id: str, owner: str, ttl: float) -> bool:
        key = f"sb:lease:{conversation_id}"
        return bool(await self._redis().eval(_LEASE_RENEW, 1, key, owner, int(ttl * 1000)))

    async def lease_release(self, conversation_id: str, owner: str) -> None:
        await self._redis().eval(_LEASE_RELEASE, 1, f"sb:lease:{conversation_id}", owner)


@cache
def get_journal() -> Journal:
    if settings.REDIS_URL:
        return RedisJournal(
            url=settings.REDIS_URL, ttl=settings.CHAT_JOURNAL_TTL_SECONDS, max_events=settings.CHAT_JOURNAL_MAX_EVENTS
        )
    return MemoryJournal(ttl=settings.CHAT_JOURNAL_TTL_SECONDS, max_events=settings.CHAT_JOURNAL_MAX_EVENTS)
