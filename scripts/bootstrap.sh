#!/usr/bin/env bash
# Create .venv and install the pinned Python dependencies (runtime, or with --dev the test tools).
# Re-running is cheap: it reinstalls only when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

PYTHON=${PYTHON:-python3}
VENV=.venv
REQ=requirements.txt
[ "${1:-}" = "--dev" ] && REQ=requirements-dev.txt

command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is needed"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian splits venv/ensurepip into its own package.
    rm -rf "$VENV"
    apt_install python3-venv
    "$PYTHON" -m venv "$VENV"
  fi
fi

stamp="$VENV/.installed-$(cat requirements.txt "$REQ" | sha256sum | cut -c1-16)-$(basename "$REQ" .txt)"
if [ ! -f "$stamp" ]; then
  say "installing Python packages from $REQ"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
