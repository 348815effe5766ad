"""scripts/run_notebooks.py on a probe checkout in a temporary folder (never the real notebooks): one run per
notebook at a time, each execution in a file of its own, the committed notebook replaced only by a complete scrubbed
execution, kernels that import the checkout's own saelib, and figures of a run with parameters kept out of figures/."""

import fcntl
import re
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from saelib.core.paths import REPO_ROOT


def _checkout(tmp_path, cells=("import saelib\nprint(saelib.WHO)",)):
    """A checkout with its own saelib package and one probe notebook (a parameters cell, then ``cells``)."""
    root = tmp_path / "checkout"
    (root / "saelib").mkdir(parents=True)
    (root / "saelib" / "__init__.py").write_text("WHO = 'this checkout'\n")
    (root / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell('PROFILE = "default"\nSEED = 0', metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path = root / "notebooks" / "00_probe.ipynb"
    nbformat.write(nb, path)
    path.with_suffix(".py").write_text("# the py:percent twin (not synced in this test)\n")
    return root, path


def _another_checkout(tmp_path):
    """The folder of another checkout's saelib, as its environment's editable install puts it on the path."""
    package = tmp_path / "other" / "saelib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("WHO = 'another checkout'\n")
    return package.parent


def _runner(monkeypatch, root):
    """The runner module with ``root`` as its repository, and ``main(*argv)``."""
    spec = importlib.util.spec_from_file_location("run_notebooks_probe", REPO_ROOT / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, value in {"ROOT": root, "NOTEBOOKS": root / "notebooks", "sync_pair": lambda nb: None}.items():
        monkeypatch.setattr(module, name, value)

    def main(*argv: str) -> None:
        monkeypatch.setattr(sys, "argv", ["run_notebooks.py", *argv])
        module.main()

    return module, main


def _executed(source, out, executed_cells=None):
    """Write ``source`` as papermill would after running its first ``executed_cells`` code cells (all if None)."""
    book = nbformat.read(source, as_version=4)
    book.metadata["papermill"] = {"parameters": {}}
    for i, cell in enumerate(book.cells):
        cell.metadata["papermill"] = {"duration": 0.1, "status": "completed"}
        if executed_cells is None or i < executed_cells:
            cell.execution_count = i + 1
    nbformat.write(book, out)


def test_the_kernel_imports_this_checkouts_saelib_whatever_the_environment(tmp_path, monkeypatch):
    """A real kernel on the probe notebook, started from an environment that puts another checkout's saelib on the
    path: it imports this checkout's, and the committed notebook is complete and scrubbed."""
    root, nb = _checkout(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(_another_checkout(tmp_path)))
    _, main = _runner(monkeypatch, root)
    main("00")
    committed = nbformat.read(nb, as_version=4)
    assert committed.cells[1].outputs[0]["text"] == "this checkout\n"
    assert "papermill" not in committed.metadata and all(c.execution_count for c in committed.cells)
    assert os.environ["PYTHONPATH"] == str(tmp_path / "other")  # the runner's own environment is restored


def test_a_run_whose_kernels_would_import_another_saelib_stops_before_any_notebook_runs(tmp_path, monkeypatch):
    root, nb = _checkout(tmp_path)
    shutil.rmtree(root / "saelib")  # nothing of this checkout's to import: the other checkout's would be used
    monkeypatch.setenv("PYTHONPATH", str(_another_checkout(tmp_path)))
    ran = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda source, out, **kw: ran.append(out))
    _, main = _runner(monkeypatch, root)
    before = nb.read_bytes()
    with pytest.raises(
        SystemExit,
        match=r"would import saelib from .*other/saelib/__init__.py, not from this "
        r"checkout",
    ):
        main("00")
    assert ran == [] and nb.read_bytes() == before


def test_an_incomplete_execution_never_replaces_the_committed_notebook(tmp_path, monkeypatch):
    """papermill returned without an error but the last cell never ran: exit with an error, notebook untouched."""
    root, nb = _checkout(tmp_path, cells=("x = 1", "y = 2"))
    monkeypatch.setattr(papermill, "execute_notebook", lambda source, out, **kw: _executed(source, out, 2))
    _, main = _runner(monkeypatch, root)
    before = nb.read_bytes()
    with pytest.raises(SystemExit, match="code cell 2 was not executed"):
        main("00")
    assert nb.read_bytes() == before
    assert (root / "build" / "executed" / "default" / "00_probe.ipynb").exists()  # the copy to look at


@pytest.mark.parametrize("defect", ["papermill metadata", "error output", "not executed"])
def test_check_complete_names_what_is_wrong(tmp_path, monkeypatch, defect):
    module, _ = _runner(monkeypatch, tmp_path)
    book = nbformat.v4.new_notebook()
    book.cells = [
        nbformat.v4.new_code_cell("1", execution_count=1),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("  \n"),
    ]  # an empty code cell never gets a count
    path = tmp_path / "done.ipynb"
    nbformat.write(book, path)
    module.check_complete(path)
    cell = book.cells[0]
    if defect == "papermill metadata":
        cell.metadata["papermill"] = {"status": "completed"}
    elif defect == "error output":
        cell.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
    else:
        cell.execution_count = None
    nbformat.write(book, path)
    with pytest.raises(
        module.IncompleteNotebookError,
        match={
            "papermill metadata": "cell 0 still holds papermill",
            "error output": "code cell 0 raised an error",
            "not executed": "code cell 0 was not executed",
        }[defect],
    ):
        module.check_complete(path)


def test_each_run_executes_into_a_file_of_its_own_under_the_notebooks_lock(tmp_path, monkeypatch):
    root, nb = _checkout(tmp_path)
    lock = root / "build" / "locks" / nb.stem / ".lock"
    lock.parent.mkdir(parents=True)
    seen = []

    def execute(source, out, **kw):
        with open(lock, "a") as handle:  # a second run of this notebook would wait here
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
                held = False
            except BlockingIOError:
                held = True
        seen.append((Path(out), held))
        _executed(source, out)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    _, main = _runner(monkeypatch, root)
    main("00", "--profile", "dev")
    main("00", "--profile", "dev")
    final = root / "build" / "executed" / "dev" / "00_probe.ipynb"
    assert [held for _, held in seen] == [True, True]
    assert len({out for out, _ in seen}) == 2 and final not in {out for out, _ in seen}
    assert sorted(p.name for p in final.parent.iterdir()) == ["00_probe.ipynb", "timings.json"]


def test_a_run_with_parameters_writes_its_figures_outside_the_committed_folder(tmp_path, monkeypatch):
    root, nb = _checkout(tmp_path)
    figures = []

    def execute(source, out, **kw):  # a kernel started here inherits this environment
        figures.append(os.environ.get("SAELIB_FIGURES"))
        _executed(source, out)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.delenv("SAELIB_FIGURES")
    _, main = _runner(monkeypatch, root)
    main("00", "-p", "SEED", "3")
    main("00", "--profile", "dev", "-p", "SEED", "3")
    main("00")  # the committed defaults: figures/ as always
    custom = str(root / "build" / "figures" / "custom")
    assert figures == [custom, custom, None]


def test_a_run_reports_sections_and_times_quietly_and_leaves_the_committed_notebook_trusted(
    tmp_path, monkeypatch, capfd
):
    """A real kernel on a probe notebook with headings: each heading is printed with its elapsed time as the kernel
    reaches it, the kernel's unencrypted-TCP warning never appears (IPC transport), the run ends with a table of
    times (not a raw dict), and the committed notebook is signed as trusted in this user's signature database."""
    from nbformat.sign import NotebookNotary

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))  # the notary's database and secret
    root, nb = _checkout(tmp_path, cells=("x = 1",))
    book = nbformat.read(nb, as_version=4)
    book.cells[1:1] = [nbformat.v4.new_markdown_cell("# Setup\ntext"), nbformat.v4.new_markdown_cell("## Part two")]
    nbformat.write(book, nb)
    _, main = _runner(monkeypatch, root)
    main("00")
    out = capfd.readouterr()
    lines = out.out.splitlines()
    assert "without encryption" not in out.out + out.err
    assert any(re.fullmatch(r"\s+0:\d\d  Setup", line) for line in lines), lines
    assert any(re.fullmatch(r"\s+0:\d\d    Part two", line) for line in lines), lines
    table = lines[lines.index("run_all: 1 notebook(s), profile default") + 1 :]
    assert re.fullmatch(r"\s+notebook\s+time", table[0]) and re.fullmatch(r"\s+00_probe\s+0:\d\d", table[1])
    assert re.fullmatch(r"\s+total\s+0:\d\d", table[2])
    assert lines[-1].strip() == "times and slowest cells: build/executed/default/timings.json"
    committed = nbformat.read(nb, as_version=4)
    assert committed.cells[1].source.startswith("# Setup") and "papermill" not in committed.metadata
    assert NotebookNotary().check_signature(committed)
