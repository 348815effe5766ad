#!/usr/bin/env bash
# Install Debian's Chromium for the dashboard's browser test (tests/browser) if it is missing. Needs root or sudo;
# without either it says so and the browser test will fail with the fix (or set SAELIB_NO_BROWSER=1 to skip it).
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || [ "${SAELIB_NO_BROWSER:-0}" = "1" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure_chromium: not root and no sudo: install Debian's chromium yourself or set SAELIB_NO_BROWSER=1" >&2
    exit 0
  fi
fi
echo "ensure_chromium: installing Debian's chromium for the dashboard browser test"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } \
  || echo "ensure_chromium: apt-get install chromium failed; the browser test will fail (SAELIB_NO_BROWSER=1 skips it)" >&2
exit 0
