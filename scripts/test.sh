#!/usr/bin/env bash
# The whole test suite: lint, format check, type check, tests in the default setup (SQLite and
# the in-memory channel layer, browser tests included), then the websocket and chat tests again
# in the scale-out setup (PostgreSQL + Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
BIN=.venv/bin

say "ruff"
"$BIN/ruff" check .
"$BIN/ruff" format --check .
say "mypy"
"$BIN/mypy" .

# The suite must not pick up a developer's own .env or database.
export SUPPORTBOT_ENV_FILE=/dev/null
export SUPPORTBOT_VAR_DIR="${SUPPORTBOT_VAR_DIR:-$(mktemp -d)}"
unset DATABASE_URL REDIS_URL LLM_BASE_URL LLM_API_KEY LLM_MODEL

say "tests: default setup (SQLite, in-memory channel layer)"
"$BIN/pytest" "$@"

TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
if reason=$("$BIN/python" scripts/services_check.py "$TEST_DATABASE_URL" "$TEST_REDIS_URL"); then
  say "tests: scale-out setup (PostgreSQL, Redis)"
  DATABASE_URL="$TEST_DATABASE_URL" REDIS_URL="$TEST_REDIS_URL" "$BIN/pytest" tests/chat tests/catalog "$@"
elif [ "${CI:-}" = "true" ]; then
  die "the scale-out setup cannot run in CI: $reason"
else
  echo "SKIPPED scale-out run (PostgreSQL + Redis): $reason" >&2
fi
