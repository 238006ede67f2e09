"""Django's cache from async code, without its thread hop when there is nothing to wait for.

Django's async cache methods are the sync ones wrapped in `sync_to_async` (thread-sensitive):
every call queues on channels' one database thread, behind every socket's database work —
a rate-limit check took four such hops per message. The in-process cache (LocMemCache, the
default without REDIS_URL) is a dict behind a lock: it is called right here. Redis is called on
a worker thread of its own (redis-py's client is thread-safe), several operations in one hop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

T = TypeVar("T")


async def cache_run(operations: Callable[[], T]) -> T:
    """Run `operations` (synchronous calls on `django.core.cache.cache`) and return their result."""
    if isinstance(caches["default"], LocMemCache):
        return operations()
    return await sync_to_async(operations, thread_sensitive=False)()
