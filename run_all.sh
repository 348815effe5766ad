#!/usr/bin/env bash
# Regenerate every figure: set up the environment if needed, then run the notebooks in order with papermill.
#   ./run_all.sh                     all notebooks, default profile (updates the committed notebooks and figures/)
#   ./run_all.sh 00                  one notebook (by number or name)
#   ./run_all.sh --profile dev       a quick run; outputs go to build/executed/dev and figures/dev only
#   ./run_all.sh -p NAME VALUE       other parameters; figures go to build/figures/custom, notebooks stay as committed
#   ./run_all.sh --html              also export the notebooks that ran to offline HTML pages in build/html/
# The kernels import this checkout's saelib whichever environment runs them (SAELIB_VENV=... included).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/bootstrap.sh
case " $* " in *" --html "*) ./scripts/ensure_chromium.sh ;; esac  # Debian's MathJax for the pages
export HF_HUB_OFFLINE=1 TQDM_DISABLE=1
exec "${SAELIB_VENV:-.venv}/bin/python" scripts/run_notebooks.py "$@"
