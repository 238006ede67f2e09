"""The app's settings for chat_load.py runs with `--layer stock`: supportbot.settings with
channels' stock in-memory layer instead of chat.events.InMemoryChannelLayer (the "before" of
docs/benchmarks.md). Nothing else differs."""

import os
import sys

from supportbot.settings import *  # noqa: F403
from supportbot.settings import CHANNEL_LAYERS

if os.environ.get("BENCH_LAYER") == "stock" and "REDIS_URL" not in os.environ:
    CHANNEL_LAYERS["default"]["BACKEND"] = "channels.layers.InMemoryChannelLayer"

# Experiment knob (docs/benchmarks.md): the database threads and the event loop share the GIL.
if _switch := os.environ.get("BENCH_SWITCH_INTERVAL"):
    sys.setswitchinterval(float(_switch))
