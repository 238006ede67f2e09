"""The app's settings for chat_load.py runs with `--layer memory-fast`: supportbot.settings with
the in-memory channel layer swapped for chat.events.InMemoryChannelLayer (the stock layer's
per-frame sweep is O(sockets)). Nothing else differs; see docs/benchmarks.md."""

import os
import sys

from supportbot.settings import *  # noqa: F403
from supportbot.settings import CHANNEL_LAYERS

if CHANNEL_LAYERS["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer":
    CHANNEL_LAYERS["default"]["BACKEND"] = "chat.events.InMemoryChannelLayer"

# Experiment knob (docs/benchmarks.md, "GIL"): the database thread and the event loop share the GIL.
if _switch := os.environ.get("BENCH_SWITCH_INTERVAL"):
    sys.setswitchinterval(float(_switch))
