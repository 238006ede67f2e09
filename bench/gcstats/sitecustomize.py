"""The garbage collector's own CPU time in a server process, for `chat_load.py --gc-stats`.

Loaded by Python at start-up from PYTHONPATH (chat_load.py puts this folder there for the server
it starts). With BENCH_GC_STATS set to a file path, it times every collection with
`gc.callbacks` (the thread's CPU time, `time.thread_time`) and writes, when the process exits,
one JSON line: per generation the collections, their CPU seconds, the longest, and the objects
they freed. Nothing happens without BENCH_GC_STATS. Not part of the app or its tests.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import time

_path = os.environ.get("BENCH_GC_STATS")

if _path:
    _stats = [{"collections": 0, "cpu_s": 0.0, "longest_s": 0.0, "collected": 0} for _ in range(3)]
    _started = [0.0]

    def _timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _started[0] = time.thread_time()
            return
        spent = time.thread_time() - _started[0]
        entry = _stats[info["generation"]]
        entry["collections"] += 1
        entry["cpu_s"] += spent
        entry["longest_s"] = max(entry["longest_s"], spent)
        entry["collected"] += info["collected"]

    def _write() -> None:
        with open(str(_path), "a") as file:
            file.write(json.dumps({"pid": os.getpid(), "thresholds": gc.get_threshold(), "generations": _stats}) + "\n")

    gc.callbacks.append(_timed)
    atexit.register(_write)
