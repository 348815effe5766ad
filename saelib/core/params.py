"""Notebook parameters, checked before a run.

papermill injects ``-p NAME VALUE`` after the cell tagged ``parameters`` and only logs a warning for a name that cell
does not declare, so a typo (``-p PROFIL dev``) silently runs the defaults. :func:`execute_notebook` (used by
``scripts/run_notebooks.py``) refuses such a run before any kernel starts, listing the valid parameters.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class UnknownParameterError(ValueError):
    """A parameter that the notebook's ``parameters`` cell does not declare."""


class ParameterTypeError(TypeError):
    """A parameter whose value does not have the type its ``parameters`` cell annotates."""


# annotation (as papermill reports it) -> accepted Python types; unannotated parameters are not checked
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
}


def declared_parameters(notebook: str | Path, language: str = "python") -> dict[str, dict[str, Any]]:
    """Name -> papermill's ``{name, inferred_type_name, default, help}`` for each variable of the first cell tagged
    ``parameters`` (empty without one). Reads the file only, no kernel. Unlike ``papermill.inspect_notebook`` it
    works without kernelspec metadata, which an .ipynb that jupytext creates from its .py twin lacks."""
    import nbformat
    from papermill.translators import papermill_translators

    nb = nbformat.read(str(notebook), as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return {}
    translator = papermill_translators.find_translator(nb.metadata.get("kernelspec", {}).get("name"), language)
    return {p.name: p._asdict() for p in translator.inspect(cell)}


def check_parameters(notebook: str | Path, parameters: Mapping[str, Any]) -> None:
    """Raise :class:`UnknownParameterError` if ``parameters`` names anything ``notebook`` does not declare, and
    :class:`ParameterTypeError` if a value does not have the type the parameters cell annotates."""
    declared = declared_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        valid = ", ".join(f"{name} (default {p['default']})" for name, p in declared.items())
        raise UnknownParameterError(
            f"{Path(notebook).name} does not declare {', '.join(map(repr, unknown))}; its parameters: "
            f"{valid or 'none (no cell tagged parameters)'}. Names are case-sensitive; check the spelling."
        )
    for name, value in parameters.items():
        want = _TYPES.get(declared[name]["inferred_type_name"].replace("typing.", "").lower())
        if want is not None and not (isinstance(value, want) and not (isinstance(value, bool) and bool not in want)):
            raise ParameterTypeError(
                f"{Path(notebook).name}: parameter {name} is declared {declared[name]['inferred_type_name']} "
                f"(default {declared[name]['default']}) but was given {value!r} ({type(value).__name__}). On the "
                f"command line quote strings as they are and numbers as literals: -p {name} {declared[name]['default']}"
            )


def parse_value(text: str) -> Any:
    """A command-line value: a Python literal when it is one (3, 0.5, True, None, [1, 2]), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def execute_notebook(
    input_path: str | Path, output_path: str | Path, parameters: Mapping[str, Any] | None = None, **kwargs: Any
) -> Any:
    """``papermill.execute_notebook`` after :func:`check_parameters`: an unknown parameter runs nothing."""
    import papermill

    check_parameters(input_path, parameters or {})
    return papermill.execute_notebook(str(input_path), str(output_path), parameters=dict(parameters or {}), **kwargs)
