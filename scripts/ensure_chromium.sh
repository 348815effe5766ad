#!/usr/bin/env bash
# Install what the browser tests (tests/browser) and the HTML export (scripts/export_html.py) need from Debian when
# it is missing: chromium, and libjs-mathjax (MathJax for the exported pages). Needs root or sudo; without either it
# says so and the browser tests will fail with the fix (or set SAELIB_NO_BROWSER=1 to skip them). apt runs quietly:
# its output goes to a log that is shown only when the install fails.
set -uo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || [ "${SAELIB_NO_BROWSER:-0}" = "1" ] || missing+=(chromium)
[ -e /usr/share/javascript/mathjax/MathJax.js ] || missing+=(libjs-mathjax)
if [ "${#missing[@]}" = "0" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure_chromium: not root and no sudo: install Debian's ${missing[*]} yourself or set SAELIB_NO_BROWSER=1" >&2
    exit 0
  fi
fi
echo "ensure_chromium: installing Debian's ${missing[*]} for the browser tests and the HTML export"
log="$(mktemp)"
apt_get() {  # quiet, non-interactive; as root apt's "Download is performed unsandboxed" notice is expected
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0 "$@" >>"$log" 2>&1
}
if apt_get install -y "${missing[@]}" || { apt_get update && apt_get install -y "${missing[@]}"; }; then
  rm -f "$log"
else
  grep -v "Download is performed unsandboxed" "$log" | tail -n 20 >&2
  echo "ensure_chromium: apt-get install ${missing[*]} failed (log above); the browser tests will fail" \
       "(SAELIB_NO_BROWSER=1 skips them)" >&2
  rm -f "$log"
fi
exit 0
