"""ICA fits shipped with the release dictionaries, so notebooks 02 and 03 compare SAEs with an ICA that converged.

FastICA on d = 576 needs many rows and iterations to converge (the paper fitted sklearn's defaults on about 2M
activations); sklearn's fixed-point iteration had settled 2-12% of the components at layers 8, 14 and 26 after
500 iterations. ``scripts/release_baselines.py`` therefore solves FastICA's objective with Picard-O, stopped by
FastICA's own rule, once per residual layer on a larger training sample, and writes ``dictionaries/baselines/``:
one safetensors file per hook (``directions`` [d, d] in raw activation space, float16, and ``center`` [d], float32;
sources = (x - center) @ directions.T) and ``manifest.json`` with each file's sha256, the sample, the solver, its
iterations and FastICA's final stopping statistic. ``load_shipped_ica`` checks the sha256, model, hook and width
before returning a fit.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load, save

from saelib.core.artifacts import atomic_write_bytes, atomic_write_json, file_sha256, read_json
from saelib.model.hooks import layer_of

FILE_DTYPE = torch.float16  # 0.66 MB per layer: the dictionaries folder stays under 100 MiB


def baselines_dir() -> Path:
    from saelib.dictionaries.release import DICTIONARIES_DIR

    return DICTIONARIES_DIR / "baselines"


class BaselineIntegrityError(ValueError):
    """A shipped baseline file is missing, altered, or made for another model, hook or width."""


@dataclass(frozen=True)
class ICAFitInfo:
    hook: str
    file: str
    sha256: str
    model: str
    model_sha256: str
    store: str  # the activation store the rows were drawn from
    rows: int
    seed: int
    max_iter: int
    tol: float
    n_iter: int
    final_change: float  # FastICA's stopping statistic one step past the fit (converged: below tol)
    converged: bool
    median_change: float  # the same change per component: its median...
    stable_share: float  # ...and the share of components below tol
    seconds: float
    solver: str = "fastica"  # "picard": Picard-O on FastICA's objective, stopped by FastICA's rule
    trace: tuple[tuple[int, float, float], ...] = ()  # (iterations, largest, median change) per block (Picard)


@dataclass(frozen=True)
class ShippedICA:
    info: ICAFitInfo
    directions: torch.Tensor  # [d, d] float32
    center: torch.Tensor  # [d]


def ica_file_name(hook: str) -> str:
    return f"ica-{hook.replace('.', '-')}.safetensors"


def fit_release_ica(
    store,
    hook: str,
    rows: int,
    seed: int,
    max_iter: int,
    tol: float,
    model: str,
    model_sha256: str,
    solver: str = "picard",
) -> tuple[dict[str, torch.Tensor], dict]:
    """ICA (FastICA's objective; ``solver`` as in ``fit_ica_with_convergence``) on ``rows`` ordinary training rows
    of ``store`` at ``hook`` (drawn as notebook 02 draws its sample). Returns (tensors to save, manifest entry
    without file hash)."""
    from saelib.baselines.directions import fit_ica_with_convergence
    from saelib.interp.comparison import fit_sample

    x = fit_sample(store, hook, rows, seed)
    if len(x) < rows:
        raise ValueError(f"{store.dir.name} has {len(x)} ordinary rows at {hook}, fewer than rows={rows}")
    start = time.perf_counter()
    fit = fit_ica_with_convergence(x, seed, max_iter, tol, solver)
    entry = {
        "hook": hook,
        "model": model,
        "model_sha256": model_sha256,
        "store": store.dir.name,
        "rows": rows,
        "solver": solver,
        "seed": seed,
        "max_iter": max_iter,
        "tol": tol,
        "n_iter": fit["n_iter"],
        "final_change": fit["final_change"],
        "converged": fit["converged"],
        "median_change": fit["median_change"],
        "stable_share": fit["stable_share"],
        "seconds": round(time.perf_counter() - start, 1),
        "trace": fit["trace"],
    }
    return {"directions": fit["directions"], "center": fit["center"]}, entry


def write_shipped_ica(tensors: dict[str, torch.Tensor], entry: dict, out: Path | None = None) -> ICAFitInfo:
    """Write one fit (atomically) and merge its entry into ``manifest.json``; entries of other hooks are kept."""
    from saelib.dictionaries.release import git_revision

    out = baselines_dir() if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    path = out / ica_file_name(entry["hook"])
    atomic_write_bytes(
        path,
        save(
            {
                "directions": tensors["directions"].to(FILE_DTYPE).contiguous(),
                "center": tensors["center"].float().contiguous(),
            }
        ),
    )
    info = ICAFitInfo(file=path.name, sha256=file_sha256(path), **entry)
    manifest_path = out / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.exists() else {"ica": []}
    manifest["description"] = (
        "ICA baselines (FastICA's objective) for notebooks 02 and 03 (regenerate: "
        ".venv/bin/python scripts/release_baselines.py); sources = (x - center) @ directions.T"
    )
    manifest["git_revision"] = git_revision()  # of the latest fit written
    manifest["ica"] = sorted(
        [e for e in manifest["ica"] if e["hook"] != info.hook] + [asdict(info)], key=lambda e: layer_of(e["hook"])
    )
    atomic_write_json(manifest_path, manifest)
    return info


def shipped_ica_info(root: Path | None = None) -> list[ICAFitInfo]:
    path = (baselines_dir() if root is None else root) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no shipped baselines at {path}: regenerate them with "
            ".venv/bin/python scripts/release_baselines.py, or fit ICA in the notebook "
            '(ICA = "fit")'
        )
    return [ICAFitInfo(**{**e, "trace": tuple(map(tuple, e.get("trace", ())))}) for e in read_json(path)["ica"]]


def load_shipped_ica(
    hook: str, model_sha256: str | None = None, width: int | None = None, root: Path | None = None
) -> ShippedICA:
    """The shipped ICA fit at ``hook``, checked against the manifest's sha256 and, when given, the model's
    weights hash and the activation width."""
    root = baselines_dir() if root is None else root
    entries = {e.hook: e for e in shipped_ica_info(root)}
    if hook not in entries:
        raise KeyError(
            f"no shipped ICA fit for {hook!r}; shipped: {sorted(entries)}. Fit one with "
            f".venv/bin/python scripts/release_baselines.py --hooks {hook}"
        )
    info = entries[hook]
    path = root / info.file
    if not path.exists():
        raise BaselineIntegrityError(
            f"{path} is missing: restore it (git checkout -- {path}) or regenerate it with scripts/release_baselines.py"
        )
    if file_sha256(path) != info.sha256:
        raise BaselineIntegrityError(
            f"{path} does not match the sha256 in {root / 'manifest.json'}: restore it "
            "(git checkout) or regenerate it with scripts/release_baselines.py"
        )
    if model_sha256 is not None and model_sha256 != info.model_sha256:
        raise BaselineIntegrityError(
            f"{path} was fitted on activations of {info.model} (weights sha256 "
            f"{info.model_sha256[:12]}), not this model ({model_sha256[:12]}): fit ICA "
            'for this model with ICA = "fit" or scripts/release_baselines.py'
        )
    t = load(path.read_bytes())
    directions, center = t["directions"].float(), t["center"].float()
    if width is not None and directions.shape[1] != width:
        raise BaselineIntegrityError(f"{path} expects activations of width {directions.shape[1]}, got {width}")
    return ShippedICA(info, directions, center)
