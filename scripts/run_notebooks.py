"""Run the numbered notebooks in order with papermill (called by ./run_all.sh).

Each notebook executes into a temporary file of its own in build/executed/<profile>/, renamed to <notebook>.ipynb
when done; one run per notebook at a time (a lock per notebook). For the default profile (and no -p) a successful
run replaces the committed notebook, atomically, with its execution once papermill's run metadata is stripped,
machine paths removed and every code cell checked to have run without error, so nbval compares against exactly what
this script produced, signed as trusted (Jupyter's notebook notary, this user's signature database) so that its
interactive outputs render for whoever ran it. Stops at the first failing notebook and leaves the committed one
untouched. Kernels talk over local IPC sockets, not TCP. While a notebook runs, each section heading is printed with
the time elapsed when the kernel reaches it; the run ends with a table of times per notebook, also written to
build/executed/<profile>/timings.json. With --html each notebook that ran is also exported to build/html/
(scripts/export_html.py: offline MathJax, figures with alt text). A run that commits notebooks then regenerates
README's verdict table from them (scripts/readme_verdicts.py).
The kernels import this checkout's saelib (its root leads PYTHONPATH; checked before the first notebook runs),
whatever environment runs them. A run with -p writes its figures under build/figures/custom, never into figures/.
Parameters (--profile, -p NAME VALUE) that a notebook's parameters cell does not declare stop the run before any
notebook executes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from nbformat.sign import NotebookNotary
from traitlets import CaselessStrEnum, default

ROOT = Path(__file__).resolve().parents[1]
# the kernels inherit these: offline, and no progress bars (a notebook bar is saved as a widget that nbval
# then compares against a run without it), also when this script is called without run_all.sh
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT))
from saelib.core.artifacts import folder_lock  # noqa: E402
from saelib.core.html_export import MathJaxMissingError, export_notebooks  # noqa: E402
from saelib.core.params import UnknownParameterError, check_parameters, execute_notebook, parse_value  # noqa: E402
from saelib.core.profiles import get_profile  # noqa: E402
from saelib.core.readme_verdicts import MarkersError, MissingVerdictsError, update_readme  # noqa: E402

STRIP = ["metadata.papermill", "cell.metadata.papermill", "cell.metadata.execution"]


class IPCKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel listens on Unix sockets under the temporary folder (IPC transport) rather than
    on TCP ports: nothing readable on the network, and ipykernel has no unencrypted-TCP warning to print."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _ip_default(self) -> str:
        # an absolute path: the kernel runs in the notebook's folder, this process elsewhere
        return os.path.join(tempfile.gettempdir(), f"saelib-kernel-{os.getpid()}-{id(self):x}-ipc")


class SectionProgress:
    """An nbclient ``on_cell_start`` hook: prints each markdown heading (a line starting with ``#``) with the time
    elapsed since the notebook started, as the kernel reaches it."""

    def __init__(self, out=None) -> None:
        self.start = time.time()
        self.out = out

    def __call__(self, cell, cell_index: int) -> None:
        if cell.cell_type != "markdown":
            return
        for line in cell.source.splitlines():
            if line.startswith("#"):
                level = len(line) - len(line.lstrip("#"))
                print(
                    f"    {clock(time.time() - self.start):>7}  {'  ' * (level - 1)}{line.lstrip('#').strip()}",
                    file=self.out or sys.stdout,
                    flush=True,
                )


def clock(seconds: float) -> str:
    """``seconds`` as m:ss (h:mm:ss from an hour)."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def timings_table(timings: Mapping[str, float]) -> str:
    """The per-notebook times as an aligned text table with a total row."""
    width = max([len("notebook"), len("total")] + [len(name) for name in timings])
    rows = [f"  {'notebook':<{width}}  {'time':>8}"] + [
        f"  {name:<{width}}  {clock(s):>8}" for name, s in timings.items()
    ]
    return "\n".join(rows + [f"  {'total':<{width}}  {clock(sum(timings.values())):>8}"])


def sign(path: Path) -> None:
    """Record ``path``'s current content as trusted in this user's notebook signature database (what ``jupyter
    trust`` does), so that JupyterLab renders its HTML and JavaScript outputs. A database that cannot be written is
    reported, not raised: the notebook itself is complete."""
    try:
        NotebookNotary().sign(nbformat.read(path, as_version=4))
    except (OSError, sqlite3.Error) as err:
        print(f"    {path.name} not signed as trusted ({err}); run: jupyter trust {path}", flush=True)


def is_trusted(path: Path) -> bool:
    """Whether ``path``'s current content is signed in this user's notebook signature database."""
    return NotebookNotary().check_signature(nbformat.read(path, as_version=4))


class IncompleteNotebookError(RuntimeError):
    """An execution that is not fit to replace the committed notebook (a cell not run, an error, run metadata)."""


class ForeignSaelibError(RuntimeError):
    """The notebook kernels would import a saelib that is not this checkout's."""


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


def scrub(path: Path, root: Path = ROOT) -> None:
    """Strip papermill metadata (nbstripout keeps outputs and counts) and replace machine paths in outputs."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nbstripout",
            "--keep-output",
            "--keep-count",
            "--extra-keys",
            " ".join(STRIP),
            str(path),
        ],
        check=True,
    )
    text = path.read_text()
    for local in {str(root), str(Path.home())}:
        text = text.replace(local + "/", "").replace(local, ".")
    nb = nbformat.reads(text, as_version=4)
    # JupyterLab opens the notebook with the right kernel (the paired .py leaves the kernelspec out)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nbformat.write(nb, path)


def check_complete(path: Path) -> None:
    """Raise :class:`IncompleteNotebookError` unless every non-empty code cell of ``path`` ran (has an execution
    count) without an error output (except cells tagged raises-exception), and no papermill metadata or injected
    parameters are left."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    problems = ["papermill metadata in the notebook's metadata"] if "papermill" in nb.metadata else []
    for i, cell in enumerate(nb.cells):
        left = sorted({"papermill", "execution"} & set(cell.metadata))
        if left:
            problems.append(f"cell {i} still holds {' and '.join(left)} metadata")
        if "injected-parameters" in cell.metadata.get("tags", []):
            problems.append(f"cell {i} holds injected parameters")
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if cell.get("execution_count") is None:
            problems.append(f"code cell {i} was not executed")
        if "raises-exception" not in cell.metadata.get("tags", []) and any(
            o.get("output_type") == "error" for o in cell.get("outputs", [])
        ):
            problems.append(f"code cell {i} raised an error")
    if problems:
        raise IncompleteNotebookError(f"{path.name}: {'; '.join(problems)}")


def kernel_env(root: Path = ROOT, custom: bool = False) -> dict[str, str]:
    """The notebook kernels' environment: ``root`` leads PYTHONPATH, so they import this checkout's saelib even
    when the environment has another checkout's installed; with ``custom`` (parameters other than the committed
    defaults) figures go under build/figures/custom instead of the committed figures/."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if custom:
        env["SAELIB_FIGURES"] = str(root / "build" / "figures" / "custom")
    return env


def check_own_saelib(root: Path, env: Mapping[str, str], cwd: Path) -> None:
    """Raise :class:`ForeignSaelibError` unless a Python started like the kernels (this interpreter, ``env``,
    ``cwd``) imports saelib from inside ``root``."""
    found = subprocess.run(
        [sys.executable, "-c", "import saelib; print(saelib.__file__)"],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    where = Path(found.stdout.strip()).resolve() if found.returncode == 0 and found.stdout.strip() else None
    if where is None or not where.is_relative_to(Path(root).resolve()):
        raise ForeignSaelibError(
            f"the notebook kernels would import saelib from {where or 'nowhere (' + found.stderr.strip()[-300:] + ')'}"
            f", not from this checkout ({root}): their results would be another checkout's. Run ./run_all.sh with "
            f"this checkout's environment (unset SAELIB_VENV, or point it at an environment without another saelib)"
        )


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` is ``env`` inside the block (a kernel started there inherits it), restored after."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _temporary(folder: Path, stem: str) -> Path:
    """A new empty file ``.<stem>.<unique>.ipynb`` in ``folder``, this run's alone."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".ipynb")
    os.close(fd)
    return Path(name)


def run_notebook(
    nb: Path, out_dir: Path, params: Mapping, commit: bool, root: Path, env: Mapping[str, str]
) -> tuple[float, list[dict]]:
    """Execute ``nb`` under a per-notebook lock into a temporary file, renamed to ``out_dir / nb.name`` when done
    (a failed run's copy too, with its traceback); with ``commit``, then replace ``nb`` by its complete, scrubbed
    execution. Returns the seconds it ran and its slowest cells. Raises papermill's error for a failing cell and
    :class:`IncompleteNotebookError` for an execution unfit to commit; ``nb`` is untouched in both cases."""
    with folder_lock(root / "build" / "locks" / nb.stem):
        sync_pair(nb)
        py = nb.with_suffix(".py")
        source = py.read_bytes() if py.exists() else None
        executed, out = _temporary(out_dir, nb.stem), out_dir / nb.name
        start = time.time()
        try:
            with environment(env):
                execute_notebook(
                    nb,
                    executed,
                    parameters=dict(params),
                    kernel_name="python3",
                    cwd=str(nb.parent),
                    language="python",
                    progress_bar=False,
                    log_output=False,
                    kernel_manager_class=IPCKernelManager,
                    on_cell_start=SectionProgress(),
                )
        except papermill.PapermillExecutionError:
            os.replace(executed, out)  # the copy with the traceback
            raise
        except BaseException:
            executed.unlink(missing_ok=True)
            raise
        seconds = round(time.time() - start, 1)
        slowest = slowest_cells(executed)
        os.replace(executed, out)
        if commit:
            commit_notebook(nb, out, source, root)
    return seconds, slowest


def commit_notebook(nb: Path, executed: Path, source: bytes | None, root: Path) -> bool:
    """Replace ``nb`` atomically by a scrubbed copy of ``executed`` once that copy passes :func:`check_complete`,
    then sign it as trusted; not when its .py twin changed since ``source`` was read (an edit during the run).
    Returns whether it did."""
    staged = _temporary(nb.parent, nb.stem)
    try:
        shutil.copyfile(executed, staged)
        scrub(staged, root)
        check_complete(staged)
        py = nb.with_suffix(".py")
        if source is not None and py.read_bytes() != source:  # edited during the run: never overwrite the edit
            print(f"    {nb.stem}.py changed while it ran; committed outputs not updated, run it again")
            return False
        os.replace(staged, nb)
    finally:
        staged.unlink(missing_ok=True)
    sync_pair(nb)
    sign(nb)  # the final content: after the scrub and the pairing
    return True


def slowest_cells(executed: Path, n: int = 5) -> list[dict]:
    """The n slowest code cells of an executed notebook (papermill's durations, read before they are scrubbed);
    none when there is no executed copy to read."""
    if not executed.exists():
        return []
    cells = nbformat.read(executed, as_version=4).cells
    timed = [
        {
            "cell": i,
            "s": round(c.metadata.get("papermill", {}).get("duration") or 0.0, 1),
            "first_line": next(
                (line[:80] for line in c.source.splitlines() if line.strip() and not line.startswith("#")), ""
            ),
        }
        for i, c in enumerate(cells)
        if c.cell_type == "code"
    ]
    return sorted(timed, key=lambda c: -c["s"])[:n]


def sync_pair(nb: Path) -> None:
    """Bring the .ipynb inputs up to date with its paired py:percent script (outputs are kept); a notebook that was
    trusted stays trusted."""
    py = nb.with_suffix(".py")
    if py.exists():
        trusted = nb.exists() and is_trusted(nb)
        subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(py)], check=True)
        if trusted:
            sign(nb)


def write_readme_verdicts(root: Path) -> None:
    """Regenerate README's verdict table from the committed notebooks (as scripts/readme_verdicts.py --write)."""
    readme = root / "README.md"
    if not readme.exists():
        return
    try:
        changed = update_readme(readme, root / "notebooks")
    except (MarkersError, MissingVerdictsError) as err:
        print(f"    README verdicts not updated: {err}", flush=True)
        return
    print(f"    README verdicts: {'updated' if changed else 'unchanged'}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("notebooks", nargs="*", help="numbers or names, e.g. 00 or 00_model_and_data (default: all)")
    ap.add_argument("--profile", default="default", help="dev, default or paper")
    ap.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter, as papermill -p (VALUE is read as a Python literal when it is one); "
        "a name that a notebook does not declare stops the run",
    )
    ap.add_argument(
        "--html",
        action="store_true",
        help="also export each notebook that ran to build/html/ (offline HTML, see scripts/export_html.py)",
    )
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
    env = kernel_env(ROOT, custom=bool(extra))
    try:
        check_own_saelib(ROOT, env, NOTEBOOKS)
    except ForeignSaelibError as err:
        sys.exit(f"run_all: {err}")
    out_dir = ROOT / "build" / "executed" / args.profile
    out_dir.mkdir(parents=True, exist_ok=True)
    timings, slowest = {}, {}
    timings_path = out_dir / "timings.json"  # rewritten after each notebook, so a failed run keeps the times so far
    for nb in notebooks:
        print(f"=== {nb.stem} (profile {args.profile}{', ' + str(extra) if extra else ''})", flush=True)
        try:
            timings[nb.stem], slowest[nb.stem] = run_notebook(nb, out_dir, params, commit, ROOT, env)
        except papermill.PapermillExecutionError as err:
            sys.exit(
                f"run_all: {nb.name} FAILED in cell {err.exec_count} ({err.ename}: {err.evalue}).\n"
                f"  Executed copy with the traceback: {(out_dir / nb.name).relative_to(ROOT)}\n"
                f"  The committed notebook is unchanged. Later notebooks were not run."
            )
        except IncompleteNotebookError as err:
            sys.exit(
                f"run_all: the execution of {nb.name} is incomplete ({err}).\n"
                f"  Executed copy: {(out_dir / nb.name).relative_to(ROOT)}\n"
                f"  The committed notebook is unchanged. Later notebooks were not run."
            )
        print(f"    done in {clock(timings[nb.stem])}", flush=True)
        timings_path.write_text(json.dumps({"total_s": timings, "slowest_cells": slowest}, indent=2) + "\n")
    if commit:
        write_readme_verdicts(ROOT)
    if args.html:
        html_dir = ROOT / "build" / "html" / ("" if commit else args.profile + ("-custom" if extra else ""))
        sources = [nb if commit else out_dir / nb.name for nb in notebooks]
        try:
            pages = export_notebooks(sources, html_dir)
        except MathJaxMissingError as err:
            sys.exit(f"run_all: the notebooks ran, the HTML export did not: {err}")
        for page in pages:
            print(f"    html: {page.relative_to(ROOT)}", flush=True)
    print(
        f"run_all: {len(timings)} notebook(s), profile {args.profile}\n{timings_table(timings)}\n"
        f"  times and slowest cells: {timings_path.relative_to(ROOT)}",
        flush=True,
    )


if __name__ == "__main__":
    main()
