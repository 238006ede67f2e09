"""The Redis channel layer, with a shorter blocking wait.

channels-redis waits for messages with BZPOPMIN for 5 s, and redis-py 8 reads with a 5 s socket
timeout by default: the two race, and a socket that received nothing for 5 s died with 1011.
Waiting 2 s keeps every blocking read well inside the client's timeout (an idle socket then
polls every 2 s, cheap for Redis).
"""

from __future__ import annotations

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer  # type: ignore[import-untyped]


class RedisChannelLayer(BaseRedisChannelLayer):
    brpop_timeout = 2
