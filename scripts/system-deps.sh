#!/usr/bin/env bash
# System packages: ffmpeg (ffmpeg + ffprobe), which the app itself needs to decode voice notes, and
# for the test suite also Chromium for the browser tests. `--run`: only what the app needs.
# Installed when missing and we are root; otherwise named, and (outside CI) the tests that need
# them skip with the reason. The app runs without ffmpeg, but every voice note fails until it is
# installed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

missing=()
# pydub and chat/media/audio.py call both binaries; Debian's ffmpeg package has both.
{ command -v ffmpeg && command -v ffprobe; } >/dev/null || missing+=(ffmpeg)
if [ "${1:-}" != "--run" ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  apt_install "${missing[@]}"
elif [ "${CI:-}" = "true" ]; then
  die "missing system packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})"
else
  if [ "${1:-}" = "--run" ]; then
    echo "note: ffmpeg is not installed; voice notes will fail until it is." >&2
  else
    echo "note: missing system packages: ${missing[*]}; the tests that need them will be skipped." >&2
  fi
  echo "      install them with: sudo apt-get install -y ${missing[*]}" >&2
fi
