"""The server process's Python runtime: the cyclic garbage collector, set up once at start.

Python's collector runs a young-generation pass every 700 net allocations of container objects and
a full pass over every tracked object now and then. In a chat server nearly all of those objects
live for the whole process (modules, classes, the URL patterns, settings) or for a connection
(sockets, consumers, pooled HTTP connections), so each pass mostly walks objects it cannot free.
At 500 streaming chats (bench/chat_load.py) the collector took ~5 s of CPU in a 27 s run, about a
fifth of the process, and each full pass held the event loop for 0.2 to 0.5 s (docs/benchmarks.md,
sixth round). Here what start-up built is collected once and frozen (gc.freeze: later passes skip
it), and the young generation is collected every GC_THRESHOLDS[0] allocations instead of 700:
cycles are still found, later and in fewer, larger passes (~1.4 s of CPU in the same run). 10 000,
not more: at 50 000 the collector took ~0.8 s there, but a single young pass could hold the loop
for 30 to 80 ms, and on a quiet process that lands on one shopper's turn.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)

DEFAULT_GC_THRESHOLDS = (10_000, 10, 10)


def gc_thresholds(raw: str | None) -> tuple[int, int, int] | None:
    """The thresholds GC_THRESHOLDS asks for: unset or empty, DEFAULT_GC_THRESHOLDS; "python",
    None (Python's own, 700,10,10); otherwise three whole numbers above 0, or ValueError."""
    value = (raw or "").strip().lower()
    if not value:
        return DEFAULT_GC_THRESHOLDS
    if value == "python":
        return None
    items = [item.strip() for item in value.split(",")]
    if len(items) != 3 or not all(item.isdigit() and int(item) > 0 for item in items):
        raise ValueError(
            f'GC_THRESHOLDS must be three whole numbers above 0 (e.g. 10000,10,10) or "python", got {raw!r}'
        )
    return int(items[0]), int(items[1]), int(items[2])


def gc_tune(thresholds: tuple[int, int, int] | None) -> None:
    """Collect start-up's garbage, freeze every object alive now, and set the collector's
    thresholds (None: keep Python's own). Call once, when the application is loaded and before
    it serves anything."""
    gc.collect()
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    logger.debug("gc: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())
