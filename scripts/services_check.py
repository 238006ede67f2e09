"""Exit 0 if PostgreSQL and Redis answer at the given URLs; otherwise print why and exit 1."""

import sys

import psycopg
import redis


def main() -> int:
    database_url, redis_url = sys.argv[1:3]
    try:
        psycopg.connect(database_url, connect_timeout=3).close()
    except Exception as exc:
        print(f"PostgreSQL at {database_url} is not reachable ({exc.__class__.__name__})")
        return 1
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:
        print(f"Redis at {redis_url} is not reachable ({exc.__class__.__name__})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
