#!/usr/bin/env bash
# Run every test: library unit and integration tests, then nbval re-execution of the committed notebooks.
# Sets up the environment first if it is missing. Extra arguments go to pytest (e.g. ./run_tests.sh tests/unit).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/bootstrap.sh
./scripts/ensure_chromium.sh  # the dashboard browser test (tests/browser)
export HF_HUB_OFFLINE=1 TQDM_DISABLE=1
VENV="${SAELIB_VENV:-.venv}"
# habits first (seconds): lint, formatting and types; settings in pyproject.toml
"$VENV/bin/ruff" check --quiet .
"$VENV/bin/ruff" format --check --quiet .
"$VENV/bin/mypy" saelib
exec "$VENV/bin/python" -m pytest "$@"
