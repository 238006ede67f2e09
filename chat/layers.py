"""Redis connections of the scale-out setup: the channel layer, and the retry policy that every
async Redis client of the app shares (the channel layer's and the journal's; the cache's is the
same policy, built in settings for redis-py's sync client).

channels-redis 4.3 was written for redis-py's old default of no socket timeout. redis-py 8 reads
and writes with a 5 s timeout, and that breaks the layer twice over:

* channels-redis waits for messages with a 5 s BZPOPMIN (`brpop_timeout`): the read timed out as
  the server answered, and a socket that received nothing for 5 s was closed with 1011.
* With a socket timeout, redis-py sends every command under `asyncio.wait_for`, and on Python
  3.11 `wait_for` swallows a cancellation that lands as the send completes (CPython #86296, fixed
  in 3.12). A consumer's receive is cancelled whenever its socket closes; when the cancellation is
  lost, the receive goes on polling BZPOPMIN for a message that never comes. The 5 s read timeout
  used to end such a receive with an error; with a longer timeout or a shorter BZPOPMIN the
  receive polled forever, and shutdown, which waits for every cancelled task, hung.

So the layer's connections have no socket timeout: BZPOPMIN is bounded by the server, and no
send goes through `wait_for`. A peer that vanished is found by TCP keepalive (redis-py's
defaults: about 45 s), one that closed the connection (a Redis restart) at once, and then the
command is retried on a new connection.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer as StockRedisChannelLayer  # type: ignore[import-untyped]
from channels_redis.utils import create_pool  # type: ignore[import-untyped]
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# A command whose connection dropped is sent again on a new connection, up to 3 times, after
# 0-0.2 s, 0-0.4 s, 0-0.8 s: enough for a restart that closed every connection, and a Redis that
# is really down fails the command within about a second.
RETRIES = 3
BACKOFF_BASE = 0.1
BACKOFF_CAP = 1.0


def redis_retry() -> Retry:
    """The retry policy of the app's async Redis clients (a new object: redis-py keeps state in it)."""
    return Retry(
        ExponentialWithJitterBackoff(base=BACKOFF_BASE, cap=BACKOFF_CAP),
        RETRIES,
        supported_errors=(RedisConnectionError, RedisTimeoutError),
    )


class RedisChannelLayer(StockRedisChannelLayer):
    """channels-redis's layer with connections fit for redis-py 8 (see the module docstring).

    Options given in a host's CONFIG entry win over these defaults.
    """

    def create_pool(self, index: int) -> ConnectionPool:
        host: dict[str, Any] = {
            "socket_timeout": None,
            "socket_connect_timeout": 5,
            "socket_keepalive": True,
            "retry": redis_retry(),
            **self.hosts[index],
        }
        pool: ConnectionPool = create_pool(host)
        return pool
