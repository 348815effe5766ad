"""Run the numbered notebooks in order with papermill (called by ./run_all.sh).

Each notebook executes into build/executed/<profile>/. For the default profile (and no -p) a successful run replaces
the committed notebook with papermill's run metadata stripped and machine paths removed, so nbval compares against
exactly what this script produced. Stops at the first failing notebook and leaves the committed one untouched.
Parameters (--profile, -p NAME VALUE) that a notebook's parameters cell does not declare stop the run before any
notebook executes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill

ROOT = Path(__file__).resolve().parents[1]
# the kernels inherit these: offline, and no progress bars (a notebook bar is saved as a widget that nbval
# then compares against a run without it), also when this script is called without run_all.sh
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT))
from saelib.core.params import UnknownParameterError, check_parameters, execute_notebook, parse_value  # noqa: E402
from saelib.core.profiles import get_profile  # noqa: E402

STRIP = ["metadata.papermill", "cell.metadata.papermill", "cell.metadata.execution"]


def select(names: list[str]) -> list[Path]:
    # the py:percent scripts are the sources; their .ipynb twins are created or updated by sync_pair
    paths = sorted(p.with_suffix(".ipynb") for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    if not names:
        return paths
    chosen = []
    for name in names:
        hits = [p for p in paths if p.stem == name or p.stem.startswith(f"{name}_") or p.name == name]
        if not hits:
            sys.exit(f"run_all: no notebook matches {name!r}; notebooks: {', '.join(p.stem for p in paths)}")
        chosen += hits
    return chosen


def scrub(path: Path) -> None:
    """Strip papermill metadata (nbstripout keeps outputs and counts) and replace machine paths in outputs."""
    subprocess.run([sys.executable, "-m", "nbstripout", "--keep-output", "--keep-count", "--extra-keys",
                    " ".join(STRIP), str(path)], check=True)
    text = path.read_text()
    for local in {str(ROOT), str(Path.home())}:
        text = text.replace(local + "/", "").replace(local, ".")
    nb = nbformat.reads(text, as_version=4)
    # JupyterLab opens the notebook with the right kernel (the paired .py leaves the kernelspec out)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nbformat.write(nb, path)


def slowest_cells(executed: Path, n: int = 5) -> list[dict]:
    """The n slowest code cells of an executed notebook (papermill's durations, read before they are scrubbed);
    none when there is no executed copy to read."""
    if not executed.exists():
        return []
    cells = nbformat.read(executed, as_version=4).cells
    timed = [{"cell": i, "s": round(c.metadata.get("papermill", {}).get("duration") or 0.0, 1),
              "first_line": next((line[:80] for line in c.source.splitlines() if line.strip()
                                  and not line.startswith("#")), "")}
             for i, c in enumerate(cells) if c.cell_type == "code"]
    return sorted(timed, key=lambda c: -c["s"])[:n]


def sync_pair(nb: Path) -> None:
    """Bring the .ipynb inputs up to date with its paired py:percent script (outputs are kept)."""
    py = nb.with_suffix(".py")
    if py.exists():
        subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(py)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("notebooks", nargs="*", help="numbers or names, e.g. 00 or 00_model_and_data (default: all)")
    ap.add_argument("--profile", default="default", help="dev, default or paper")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a notebook parameter, as papermill -p (VALUE is read as a Python literal when it is one); "
                         "a name that a notebook does not declare stops the run")
    args = ap.parse_args()
    get_profile(args.profile)  # fail early with the list of valid names
    extra = {name: parse_value(value) for name, value in args.parameter}
    if "PROFILE" in extra:
        sys.exit("run_all: set the profile with --profile, not -p PROFILE")
    params = ({} if args.profile == "default" else {"PROFILE": args.profile}) | extra
    notebooks = select(args.notebooks)
    for nb in notebooks:  # all checked before the first runs: a typo never costs a long run first
        sync_pair(nb)
        try:
            check_parameters(nb, params)
        except UnknownParameterError as err:
            sys.exit(f"run_all: {err}")
    commit = args.profile == "default" and not extra  # committed outputs are those of the defaults only
    out_dir = ROOT / "build" / "executed" / args.profile
    out_dir.mkdir(parents=True, exist_ok=True)
    timings, slowest = {}, {}
    timings_path = out_dir / "timings.json"  # rewritten after each notebook, so a failed run keeps the times so far
    for nb in notebooks:
        sync_pair(nb)
        source = nb.with_suffix(".py").read_bytes()
        out = out_dir / nb.name
        print(f"=== {nb.stem} (profile {args.profile}{', ' + str(extra) if extra else ''})", flush=True)
        start = time.time()
        try:
            execute_notebook(nb, out, parameters=params, kernel_name="python3", cwd=str(NOTEBOOKS),
                             language="python", progress_bar=False, log_output=False)
        except papermill.PapermillExecutionError as err:
            sys.exit(f"run_all: {nb.name} FAILED in cell {err.exec_count} ({err.ename}: {err.evalue}).\n"
                     f"  Executed copy with the traceback: {out.relative_to(ROOT)}\n"
                     f"  The committed notebook is unchanged. Later notebooks were not run.")
        timings[nb.stem] = round(time.time() - start, 1)
        print(f"    done in {timings[nb.stem]:.0f} s", flush=True)
        slowest[nb.stem] = slowest_cells(out)
        timings_path.write_text(json.dumps({"total_s": timings, "slowest_cells": slowest}, indent=2) + "\n")
        if commit:
            scrub(out)
            nbformat.validate(nbformat.read(out, as_version=4))
            if nb.with_suffix(".py").read_bytes() != source:  # edited during the run: never overwrite the edit
                print(f"    {nb.stem}.py changed while it ran; committed outputs not updated, run it again")
                continue
            nb.write_bytes(out.read_bytes())
            sync_pair(nb)
    print(f"run_all: {len(timings)} notebook(s) in {sum(timings.values()):.0f} s: {timings}")


if __name__ == "__main__":
    main()
