"""Notebook parameters are checked against the notebook's parameters cell before anything runs (no kernel here)."""

from __future__ import annotations

import importlib.util
import json
import sys

import nbformat
import papermill
import pytest

from saelib.core.params import (
    ParameterTypeError,
    UnknownParameterError,
    check_parameters,
    declared_parameters,
    execute_notebook,
    parse_value,
)
from saelib.core.paths import REPO_ROOT


def write_notebook(path, parameters: str | None, kernelspec: bool = True):
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell("print(PROFILE)"))
    if kernelspec:
        nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def never_executed(monkeypatch):
    """Fails the test if papermill would start a kernel."""
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **kw: pytest.fail("papermill ran the notebook"))


def test_declared_parameters_with_and_without_kernelspec(tmp_path):
    for kernelspec in (True, False):  # an .ipynb made by jupytext from its .py twin has no kernelspec
        nb = write_notebook(
            tmp_path / f"k{kernelspec}.ipynb", 'PROFILE = "default"  # dev | default\nSEED = 0', kernelspec
        )
        assert list(declared_parameters(nb)) == ["PROFILE", "SEED"]
    check_parameters(nb, {"PROFILE": "dev", "SEED": 3})


def test_unknown_parameter_is_refused_with_the_valid_ones(tmp_path, never_executed):
    nb = write_notebook(tmp_path / "tiny.ipynb", 'PROFILE = "default"\nSEED = 0')
    with pytest.raises(
        UnknownParameterError,
        match=r"tiny.ipynb does not declare 'PROFIL'; its parameters: "
        r"PROFILE \(default \"default\"\), SEED \(default 0\)",
    ):
        execute_notebook(nb, tmp_path / "out.ipynb", parameters={"PROFIL": "dev"})
    bare = write_notebook(tmp_path / "bare.ipynb", None)
    with pytest.raises(UnknownParameterError, match="none \\(no cell tagged parameters\\)"):
        check_parameters(bare, {"PROFILE": "dev"})
    check_parameters(bare, {})


def test_parse_value():
    assert [parse_value(v) for v in ["3", "0.5", "True", "None", "[1, 2]", "dev", "a b"]] == [
        3,
        0.5,
        True,
        None,
        [1, 2],
        "dev",
        "a b",
    ]


def test_every_notebook_declares_profile():
    """run_notebooks.py passes PROFILE to each notebook for a non-default profile."""
    notebooks = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks and all("PROFILE" in declared_parameters(nb) for nb in notebooks)


@pytest.fixture()
def run_notebooks(tmp_path, monkeypatch):
    """scripts/run_notebooks.py over one tiny notebook in tmp_path; returns (main(argv), the parameters it ran)."""
    spec = importlib.util.spec_from_file_location("run_notebooks", REPO_ROOT / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    write_notebook(tmp_path / "00_tiny.ipynb", 'PROFILE = "default"\nSEED = 0')
    (tmp_path / "00_tiny.py").write_text("# the py:percent twin (not synced in this test)\n")
    (tmp_path / "saelib").mkdir()  # the checkout's own package, which the kernels must import
    (tmp_path / "saelib" / "__init__.py").write_text("")
    for name, value in {"ROOT": tmp_path, "NOTEBOOKS": tmp_path, "sync_pair": lambda nb: None}.items():
        monkeypatch.setattr(module, name, value)
    ran = []

    def execute(source, out, parameters, **kw):  # an "executed" copy with papermill's per-cell durations
        ran.append(parameters)
        nb = nbformat.read(source, as_version=4)
        for i, cell in enumerate(nb.cells):
            cell.metadata["papermill"] = {"duration": float(i + 1)}
        nbformat.write(nb, out)

    monkeypatch.setattr(papermill, "execute_notebook", execute)

    def main(argv: list[str]) -> None:
        monkeypatch.setattr(sys, "argv", ["run_notebooks.py", *argv])
        module.main()

    return main, ran


def test_run_notebooks_refuses_an_unknown_parameter_before_running(run_notebooks):
    main, ran = run_notebooks
    with pytest.raises(SystemExit, match="run_all: 00_tiny.ipynb does not declare 'PROFIL'; its parameters: PROFILE"):
        main(["00", "--profile", "dev", "-p", "PROFIL", "paper"])
    with pytest.raises(SystemExit, match="with --profile, not -p PROFILE"):
        main(["00", "-p", "PROFILE", "dev"])
    assert ran == []
    main(["00", "--profile", "dev", "-p", "SEED", "3"])
    assert ran == [{"PROFILE": "dev", "SEED": 3}]


def test_annotated_parameters_are_type_checked(tmp_path, never_executed):
    nb = write_notebook(tmp_path / "typed.ipynb", 'PROFILE: str = "default"\nSEED: int = 0\nALPHA: float = 0.1')
    check_parameters(nb, {"PROFILE": "dev", "SEED": 3, "ALPHA": 1})  # an int is a valid float
    for bad in ({"SEED": "x"}, {"SEED": True}, {"PROFILE": 3}, {"ALPHA": "0.1"}):
        with pytest.raises(ParameterTypeError, match=f"parameter {next(iter(bad))} is declared"):
            execute_notebook(nb, tmp_path / "out.ipynb", bad)


def test_every_notebook_declares_typed_parameters():
    for py in sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        declared = declared_parameters(py)
        assert declared["PROFILE"]["inferred_type_name"] == "str", py.name
        assert all(p["inferred_type_name"] != "None" for p in declared.values()), (py.name, declared)


def test_run_notebooks_records_time_and_slowest_cells(run_notebooks, tmp_path):
    main, _ = run_notebooks
    main(["00", "--profile", "dev"])
    timings = json.loads((tmp_path / "build" / "executed" / "dev" / "timings.json").read_text())
    assert set(timings["total_s"]) == {"00_tiny"}
    cells = timings["slowest_cells"]["00_tiny"]
    assert cells and [c["s"] for c in cells] == sorted((c["s"] for c in cells), reverse=True)
    assert cells[0]["first_line"] == "print(PROFILE)" and cells[1]["first_line"].startswith("PROFILE")
