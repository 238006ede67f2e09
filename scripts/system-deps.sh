#!/usr/bin/env bash
# System packages the test suite needs: Chromium for the browser tests.
# Installed when missing and we are root; otherwise named, and (outside CI) the tests that need
# them skip with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  apt_install "${missing[@]}"
elif [ "${CI:-}" = "true" ]; then
  die "missing system packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})"
else
  echo "note: missing system packages: ${missing[*]}; the tests that need them will be skipped." >&2
  echo "      install them with: sudo apt-get install -y ${missing[*]}" >&2
fi
