"""Code revisions of cached artifacts.

Every artifact folder is keyed by its config *and* by the revision of the code that computes it, so an edit that
changes results never silently returns an old result. The revision is an explicit number per artifact kind, not a
hash of file paths: moving a function to another module keeps every cache valid, while changing what it computes
must bump the number. ``tests/unit/core/test_revision.py`` records a fingerprint (the AST, without docstrings) of the
functions behind each kind and fails when one changes while its revision did not.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable

CODE_REVISIONS: dict[str, int] = {
    "corpus": 1,  # text readers, cleaning, tokenization, train/held-out split
    "activations": 2,  # harvest: forward pass, hooks, row layout (2: keyed by model file sha256)
    "saes": 2,  # training loop, SAE architectures, resampling (2: keyed by code revision)
    "baselines": 1,  # FastICA fits
    "autointerp": 1,  # explanation scoring
    "absorption": 1,  # first-letter task residuals (scripts/measure_absorption.py): prompts, positions, hooks
}


def code_revision(kind: str) -> int:
    """The revision of the code behind artifacts of ``kind``; unknown kinds are revision 0 (never cached before)."""
    return CODE_REVISIONS.get(kind, 0)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def fingerprint(*objects: Callable[..., object]) -> str:
    """sha256 (16 hex digits) of the ASTs of functions or classes: comments, docstrings, formatting and the module
    they live in do not count; any change to what they compute does."""
    h = hashlib.sha256()
    for obj in objects:
        tree = _strip_docstrings(ast.parse(textwrap.dedent(inspect.getsource(obj))))
        h.update(ast.dump(tree, annotate_fields=False, include_attributes=False).encode())
    return h.hexdigest()[:16]
