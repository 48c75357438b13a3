#!/usr/bin/env bash
# Make sure the browser the end-to-end browser tests drive is installed: Debian's Chromium at
# /usr/bin/chromium (Playwright's own browser download needs a CDN this machine cannot reach).
# Installs it with apt-get when it is missing; CHROMIUM_PATH points the tests at another binary.
set -euo pipefail

browser="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$browser" ]; then exit 0; fi
if [ -n "${CHROMIUM_PATH:-}" ]; then
  echo "CHROMIUM_PATH=$browser is not an executable" >&2; exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "chromium is missing and apt-get is not available: install chromium at $browser" >&2; exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "chromium is missing and installing it needs root: apt-get install chromium" >&2; exit 1
  fi
fi
echo "chromium is missing; installing Debian's chromium with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends chromium
[ -x "$browser" ] || { echo "chromium was installed but $browser is still missing" >&2; exit 1; }
