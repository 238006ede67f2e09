"""The database steps of a turn, one by one, in this process: wall time, CPU time and statements of
each (median), against chat_load.py's PostgreSQL database and 50 000-product catalog. No sockets,
no threads: what each step costs on its own, where chat_load.py measures them together.

    .venv/bin/python bench/chat_load.py --n "" --idle 0 --no-relay --no-quiet   # once: the catalog
    .venv/bin/python bench/turn_steps.py [--turns 300] [--history 20]

Each turn stores a shopper's message (a realistic catalog question), looks up its products, builds
the request and stores a reply, in conversations of up to --history messages. It writes to the
benchmark database only (chat_load.py empties the chat tables on every run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from chat_load import VAR_DIR, app_environ_set  # noqa: E402

app_environ_set()

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from catalog.models import Product  # noqa: E402
from chat import context, services  # noqa: E402
from chat.protocol import MessageFrame  # noqa: E402
from chat.turns import _message_store, _turn_open  # noqa: E402

STEPS = ("check", "store", "grounding", "build", "reply")


class Steps:
    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[float, float, int]]] = {name: [] for name in STEPS}

    def run(self, name: str, step: Callable[..., Any], **kwargs: Any) -> Any:
        with CaptureQueriesContext(connection) as queries:
            wall, cpu = time.perf_counter(), time.thread_time()
            result = step(**kwargs)
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        statements = [q for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
        self.rows[name].append((wall * 1000, cpu * 1000, len(statements)))
        return result

    def report(self, skip: int) -> None:
        print(f"{'step':10} {'wall ms':>8} {'cpu ms':>7} {'statements':>10}")
        walls = cpus = 0.0
        for name in STEPS:
            rows = self.rows[name][skip:]
            wall, cpu = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
            walls, cpus = walls + wall, cpus + cpu
            print(f"{name:10} {wall:8.2f} {cpu:7.2f} {statistics.median(r[2] for r in rows):10.0f}")
        print(f"{'sum':10} {walls:8.2f} {cpus:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--history", type=int, default=20, help="messages per conversation at most")
    args = parser.parse_args()
    if Product.objects.count() < 1000:
        sys.exit("no benchmark catalog: run bench/chat_load.py once first")
    questions = json.loads((VAR_DIR / "queries.json").read_text())
    steps = Steps()
    seq = args.history
    for turn in range(args.turns):
        if seq + 2 > args.history:
            conversation_id = str(services.conversation_create(owner_token=uuid.uuid4().hex).id)
            seq = 0
        text, client_msg_id = questions[turn % len(questions)], uuid.uuid4()
        steps.run("check", _turn_open, conversation_id=conversation_id, client_msg_id=client_msg_id, attachment_ids=[])
        seq += 1
        frame = MessageFrame(text=text, client_msg_id=client_msg_id)
        stored = steps.run("store", _message_store, conversation_id=conversation_id, seq=seq, frame=frame)
        products = steps.run("grounding", context.grounding_find, handles=[None], words=text)
        _, grounding = steps.run(
            "build", context.turn_request_build, user_message=stored.message, plan=stored.plan, products=products
        )
        seq += 1
        steps.run(
            "reply",
            services.reply_store,
            conversation_id=conversation_id,
            message_id=uuid.uuid4(),
            seq=seq,
            end_seq=seq,
            reply_to_id=stored.message.id,
            text="Here are a few that would suit you. " * 5,
            status="complete",
            model="bench",
            usage={"prompt_tokens": 900, "completion_tokens": 60},
            grounding=grounding,
        )
    steps.report(skip=min(20, args.turns // 5))


if __name__ == "__main__":
    main()
