"""The server process's garbage collector (supportbot/runtime.py), as Daphne gets it: by importing
supportbot.asgi in a process of its own (the collector's state is the whole process's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Imports the app as a server does, then reports the collector's state, and whether a reference
# cycle made afterwards is still found by the collector's own passes (no gc.collect() here).
PROBE = """
import gc, json, weakref
import supportbot.asgi

class Node:
    pass

node = Node()
node.me = node
cycle = weakref.ref(node)
del node
before = gc.get_stats()[0]["collections"]
kept = [[] for _ in range(2 * gc.get_threshold()[0])]  # enough young objects to start a pass
print(json.dumps({
    "thresholds": gc.get_threshold(),
    "frozen": gc.get_freeze_count(),
    "young_passes": gc.get_stats()[0]["collections"] - before,
    "cycle_freed": cycle() is None,
}))
"""


def _server_process(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **{name: value for name, value in os.environ.items() if name != "GC_THRESHOLDS"},
        "SUPPORTBOT_ENV_FILE": "/dev/null",
        "SUPPORTBOT_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "supportbot.settings",
        **env,
    }
    return subprocess.run([sys.executable, "-c", PROBE], env=environ, cwd=ROOT, capture_output=True, text=True)


def test_the_server_freezes_what_it_loaded_and_collects_young_objects_less_often(tmp_path):
    result = _server_process(tmp_path)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["thresholds"] == [10000, 10, 10]
    # Django, Channels, the app's modules and URL patterns: out of every later pass.
    assert state["frozen"] > 50_000
    # Cycles made while serving are still found, by the collector's own passes.
    assert state["young_passes"] >= 1
    assert state["cycle_freed"]


def test_gc_thresholds_are_set_from_the_environment(tmp_path):
    result = _server_process(tmp_path, GC_THRESHOLDS="20000,10,5")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["thresholds"] == [20000, 10, 5]


def test_python_keeps_pythons_own_thresholds(tmp_path):
    result = _server_process(tmp_path, GC_THRESHOLDS="python")
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["thresholds"] == [700, 10, 10]
    assert state["frozen"] > 50_000  # start-up's objects are frozen whatever the thresholds


@pytest.mark.parametrize("value", ["50000,20", "50000,0,20", "fast", "-1,10,10"])
def test_a_wrong_gc_thresholds_value_stops_the_start_with_a_clear_message(tmp_path, value):
    result = _server_process(tmp_path, GC_THRESHOLDS=value)
    assert result.returncode != 0
    assert "GC_THRESHOLDS must be three whole numbers above 0" in result.stderr
