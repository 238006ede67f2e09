"""Fixed-window rate limits kept in Django's cache (Redis when REDIS_URL is set, so they hold
across processes)."""

from __future__ import annotations

import time

from django.core.cache import cache

from chat.cache import cache_run


async def rate_limit_hit(*, key: str, limit: int, window: int = 60, cost: int = 1) -> int | None:
    """Count `cost` (one hit, or bytes) against `key`. Returns None if allowed, else seconds
    until the window resets."""
    now = time.time()
    bucket = int(now // window)
    cache_key = f"rl:{key}:{bucket}"

    def hit() -> int:
        cache.add(cache_key, 0, timeout=window + 5)
        try:
            return int(cache.incr(cache_key, cost))
        except ValueError:  # expired between add and incr: start the window again
            cache.set(cache_key, cost, timeout=window + 5)
            return cost

    if await cache_run(hit) <= limit:
        return None
    return max(1, int((bucket + 1) * window - now + 0.999))


# Open sockets per address: a crashed process never decrements, so the count expires after a while.
_OPEN_TTL = 3600


async def connection_open(*, key: str, limit: int) -> bool:
    """Count an open connection for `key`; False (and not counted) when `limit` are open."""
    cache_key = f"open:{key}"

    def count_in() -> bool:
        cache.add(cache_key, 0, timeout=_OPEN_TTL)
        count = cache.incr(cache_key)
        cache.touch(cache_key, _OPEN_TTL)
        if count > limit:
            cache.decr(cache_key)
            return False
        return True

    return await cache_run(count_in)


async def connection_close(*, key: str) -> None:
    def count_out() -> None:
        try:
            if cache.decr(f"open:{key}") < 0:
                cache.set(f"open:{key}", 0, timeout=_OPEN_TTL)
        except ValueError:  # expired meanwhile
            pass

    await cache_run(count_out)
