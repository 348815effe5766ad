"""The decompositions Cunningham et al. compare in Fig. 2, built at one layer with the SAE's interface.

Every entry maps activations to non-negative feature activations (``features.feature_codes``) and comes with a
key that says how it was made (for the autointerp cache). ICA is the slow one (minutes for d = 576 on two cores at
the paper's sample sizes), so its fit is saved keyed by its inputs and reused.
"""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load, save

from saelib.activations.store import ActivationStore
from saelib.baselines.directions import (
    ICA_ORIENTATIONS,
    fit_ica_unmixing,
    fit_pca,
    mean_l0,
    neuron_basis,
    orient_ica,
    random_directions,
)
from saelib.core.artifacts import atomic_write_bytes, atomic_write_json, keyed_dir
from saelib.interp.features import ordinary_rows

METHODS = (
    "SAE",
    "PCA",
    "PCA top-k",
    "ICA (paper)",
    "ICA (heavy tail)",
    "ICA top-k",
    "neuron basis",
    "random",
    "random top-k",
)


def fit_sample(store: ActivationStore, hook: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` random ordinary rows (no position 0, no separator) of ``store`` at ``hook``, [n, d] float32."""
    return next(store.batches(hook, n, seed=seed, row_mask=ordinary_rows(store)))


def ica_unmixing_cached(
    store: ActivationStore, hook: str, x: torch.Tensor, seed: int, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """FastICA (directions, center, iterations) for ``x`` drawn from ``store``; fitted once per key, then loaded."""
    key = {
        "store": store.dir.name,
        "hook": hook,
        "rows": len(x),
        "seed": seed,
        "max_iter": max_iter,
        "x_sum": round(float(x.double().sum()), 3),
    }  # guards against a different sample under the same sizes
    path = keyed_dir("baselines", "ica", key) / "ica.safetensors"
    if path.exists():
        t = load(path.read_bytes())
        return t["directions"], t["center"], int(t["n_iter"])
    directions, center, n_iter = fit_ica_unmixing(x, seed, max_iter)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path.parent / "config.json", key)
    atomic_write_bytes(
        path,
        save({"directions": directions.contiguous(), "center": center.contiguous(), "n_iter": torch.tensor(n_iter)}),
    )
    return directions, center, n_iter


def ica_unmixing(
    store: ActivationStore, hook: str, x: torch.Tensor, seed: int, max_iter: int, shipped=None
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(directions, center, key) of the ICA baseline at ``hook``: the shipped fit (``saelib.baselines.shipped``)
    when given, else FastICA fitted here on ``x`` (cached). The key says which, with rows and iterations."""
    if shipped is not None:
        if shipped.info.hook != hook:
            raise ValueError(f"the shipped ICA fit is for {shipped.info.hook}, not {hook}")
        i = shipped.info
        key = {
            "method": "ica",
            "shipped": i.file,
            "sha256": i.sha256,
            "store": i.store,
            "rows": i.rows,
            "seed": i.seed,
            "solver": i.solver,
            "max_iter": i.max_iter,
            "n_iter": i.n_iter,
            "converged": i.converged,
        }
        return shipped.directions, shipped.center, key
    directions, center, n_iter = ica_unmixing_cached(store, hook, x, seed, max_iter)
    key = {
        "method": "ica",
        "store": store.dir.name,
        "hook": hook,
        "rows": len(x),
        "seed": seed,
        "solver": "fastica",
        "max_iter": max_iter,
        "n_iter": n_iter,
        "converged": n_iter < max_iter,
    }
    return directions, center, key


def layer_dictionaries(
    store: ActivationStore,
    hook: str,
    sae,
    sae_key: dict,
    l0_rows: torch.Tensor,
    fit_rows: int,
    seed: int = 0,
    ica_max_iter: int = 200,
    shipped_ica=None,
) -> dict[str, tuple[object, dict]]:
    """``METHODS`` at ``hook``: name -> (dictionary, key). PCA is fitted on ``fit_rows`` training rows of ``store``,
    ICA too unless ``shipped_ica`` (a ``ShippedICA`` fitted on more rows) is given; the ICA orientations are read on
    the same ``fit_rows``. Top-k variants (PCA, ICA, and random directions as the matched-sparsity negative control)
    keep as many features per token as the SAE's mean L0 on ``l0_rows`` (held-out)."""
    x = fit_sample(store, hook, fit_rows, seed)
    d = x.shape[1]
    k = max(1, int(round(mean_l0(sae, l0_rows))))
    pca = fit_pca(x)
    directions, center, ica_fit = ica_unmixing(store, hook, x, seed, ica_max_iter, shipped_ica)
    ica = {o: orient_ica(directions, center, x, o) for o in ICA_ORIENTATIONS}
    fit = {"store": store.dir.name, "hook": hook, "rows": fit_rows, "seed": seed}
    random, random_key = random_directions(d, 2 * d, seed), {"method": "random", "d": d, "n": 2 * d, "seed": seed}
    return {
        "SAE": (sae, sae_key),
        "PCA": (pca, {"method": "pca", **fit}),
        "PCA top-k": (pca.top_k(k), {"method": "pca", "k": k, **fit}),
        "ICA (paper)": (ica["paper"], {"orient": "paper", **ica_fit}),
        "ICA (heavy tail)": (ica["heavy_tail"], {"orient": "heavy_tail", **ica_fit}),
        "ICA top-k": (ica["both"].top_k(k), {"orient": "both", "k": k, **ica_fit}),
        "neuron basis": (neuron_basis(d), {"method": "neuron basis", "d": d}),
        "random": (random, random_key),
        "random top-k": (random.top_k(k), {**random_key, "k": k}),
    }


def features_to_score(n_features: int, n: int, seed: int = 0) -> list[int]:
    """``n`` feature indices drawn uniformly without replacement (sorted). The paper scored the first 150 indices;
    for PCA that would mean the 150 largest components only, so every method is sampled instead."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n_features, size=min(n, n_features), replace=False).tolist())
