"""Counters a metrics scraper can read (Prometheus text format at /metrics), per process: scrape
each Daphne process on its own port, as with any multi-process server."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TURNS = Counter("supportbot_turns", "Bot replies finished, by status.", ["status"])
TURN_FAILURES = Counter("supportbot_turn_failures", "Bot replies that did not end normally, by error code.", ["code"])
OFFLINE_ANSWERS = Counter("supportbot_offline_answers", "Replies the offline assistant gave because no model answered.")
SOCKETS = Gauge("supportbot_sockets", "Open websockets.", ["kind"])
UPLOADS = Counter("supportbot_uploads", "Photo and voice-note uploads, by result.", ["result"])
QUEUE = Gauge("supportbot_model_queue", "Model requests in this process, by state.", ["state"])
