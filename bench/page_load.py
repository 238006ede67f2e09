"""The CPU of one chat page load through the app's ASGI application (supportbot.asgi): the
middleware, the view, the template and the new visitor's session, stored in chat_load.py's
PostgreSQL database. No server and no sockets: channels' HttpCommunicator calls the application
in this process, so the figure is the app's own work for a page, without Daphne's HTTP parsing.

    .venv/bin/python bench/chat_load.py --n "" --idle 0 --no-relay --no-quiet   # once: the database
    .venv/bin/python bench/page_load.py [--pages 300] [--rounds 5]

Prints the median over rounds of the process's CPU per page (the request threads included).
Every page is a new visitor's, as in chat_load.py: its session is a row written to the benchmark
database's session table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from chat_load import app_environ_set  # noqa: E402

app_environ_set()

from channels.testing import HttpCommunicator  # noqa: E402

from supportbot.asgi import application  # noqa: E402


async def page() -> None:
    communicator = HttpCommunicator(application, "GET", "/", headers=[(b"host", b"localhost")])
    response = await communicator.get_response(timeout=10)
    await communicator.wait(timeout=10)
    if response["status"] != 200:
        raise SystemExit(f"GET / answered {response['status']}")


async def main(pages: int, rounds: int) -> None:
    for _ in range(50):  # warm: templates compiled, threads started, connections open
        await page()
    per_page = []
    for _ in range(rounds):
        cpu = time.process_time()
        for _ in range(pages):
            await page()
        per_page.append((time.process_time() - cpu) / pages * 1e6)
    rounded = ", ".join(f"{value:.0f}" for value in per_page)
    print(f"page load, CPU per page: {statistics.median(per_page):.0f} µs (median of {rounds} rounds: {rounded})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.pages, args.rounds))
