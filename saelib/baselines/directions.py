"""Baseline decompositions with an SAE-like interface, for comparing interpretability (Cunningham et al. Fig. 2).

Every baseline is a ``LinearDictionary``: feature activations = ReLU(((x − center) · Dᵀ) ⊙ sign), optionally
keeping only each token's top-k (the paper's top-k PCA/ICA, matched to an SAE's L0). "Both signs" means each
direction appears twice, as +v and −v, so a negative projection is also a (non-negative) feature activation.

- ``fit_pca``: scikit-learn PCA, both signs of each component (the paper's ``pca`` / ``pca_topk``).
- ``fit_ica``: scikit-learn FastICA on standardised activations (as the paper's code). ``orient="paper"`` keeps
  each component's sign as FastICA returned it and scores only its positive tail, as the released evaluation did;
  ``orient="heavy_tail"`` flips each component so its heavier tail is positive (a 2026 re-evaluation of Cunningham et al.'s Fig. 2
  found this changes the later-layer conclusion; notebook 02 reports both); ``orient="both"`` keeps both signs.
- ``neuron_basis``: the residual / neuron basis, both signs.
- ``random_directions``: random unit directions (Gaussian, normalised).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch


@dataclass
class LinearDictionary:
    name: str
    directions: torch.Tensor  # [n_features, d_in] (not necessarily unit norm: ICA unmixing rows)
    center: torch.Tensor  # [d_in]
    k: int | None = None  # keep only the top-k activations per token

    @property
    def n_features(self) -> int:
        return self.directions.shape[0]

    @property
    def d_in(self) -> int:
        return self.directions.shape[1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Non-negative feature activations, [..., n_features] for x [..., d_in]."""
        if x.shape[-1] != self.d_in:
            raise ValueError(f"{self.name}: activations have width {x.shape[-1]}, the dictionary expects {self.d_in}")
        acts = torch.relu((x.float() - self.center) @ self.directions.T)
        if self.k is not None and self.k < self.n_features:
            top = acts.topk(self.k, dim=-1)
            acts = torch.zeros_like(acts).scatter_(-1, top.indices, top.values)
        return acts

    def encode_features(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``encode(x)[..., features]``; without top-k only those columns are computed (a top-k code needs every
        feature's activation to know which survive)."""
        if self.k is not None and self.k < self.n_features:
            return self.encode(x)[..., features]
        if x.shape[-1] != self.d_in:
            raise ValueError(f"{self.name}: activations have width {x.shape[-1]}, the dictionary expects {self.d_in}")
        return torch.relu((x.float() - self.center) @ self.directions[features].T)

    def top_k(self, k: int) -> "LinearDictionary":
        """The same dictionary keeping only each token's ``k`` largest activations (match an SAE's L0)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return LinearDictionary(f"{self.name} top-{k}", self.directions, self.center, k)


def _both_signs(directions: torch.Tensor) -> torch.Tensor:
    return torch.cat([directions, -directions])


def fit_pca(x: torch.Tensor, n_components: int | None = None) -> LinearDictionary:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=n_components, svd_solver="full").fit(x.double().numpy())
    comps = torch.from_numpy(pca.components_).float()
    return LinearDictionary("PCA", _both_signs(comps), torch.from_numpy(pca.mean_).float())


ICA_ORIENTATIONS = ("paper", "heavy_tail", "both")


def fit_ica_unmixing(
    x: torch.Tensor,
    seed: int,
    max_iter: int,
    tol: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """FastICA on standardised activations (as the paper's code did), folded back to raw activation space:
    sources = (x - center) @ directions.T. Returns (directions, center, iterations run); ``iterations == max_iter``
    means it stopped before sklearn's tolerance was met (the ConvergenceWarning is silenced; report the count)."""
    fit = fit_ica_with_convergence(x, seed, max_iter, tol)
    return fit["directions"], fit["center"], fit["n_iter"]


ICA_SOLVERS = ("fastica", "picard")


def fit_ica_with_convergence(
    x: torch.Tensor, seed: int, max_iter: int, tol: float = 1e-4, solver: str = "fastica"
) -> dict:
    """``fit_ica_unmixing`` plus how far from convergence it stopped: ``final_change`` is FastICA's own stopping
    statistic (max over components of | |w_new . w| - 1 |) for one more iteration from the returned unmixing;
    sklearn stops when it falls below ``tol``. Per component the same change says which directions have settled:
    ``stable_share`` is the share below ``tol``, ``median_change`` the median. Keys: directions, center, n_iter,
    final_change, converged, median_change, stable_share, trace ([iterations, largest change, median change] after
    each block of iterations; Picard only).

    ``solver="picard"`` solves the same problem (FastICA's logcosh contrast under an orthogonal unmixing) with
    Picard-O (Ablin et al. 2018, ``python-picard``; ``extended=True`` handles sub- and super-Gaussian sources as
    FastICA does), whose quasi-Newton steps converge where FastICA's fixed-point iteration crawls on d = 576 of
    mostly near-Gaussian directions. It runs in blocks of ``PICARD_BLOCK`` iterations and stops on FastICA's own
    rule, so ``converged`` means the same for both solvers: the result is a FastICA fixed point to ``tol``."""
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    if solver not in ICA_SOLVERS:
        raise ValueError(f"solver must be one of {ICA_SOLVERS}, got {solver!r}")
    data = x.float().numpy()
    scaler = StandardScaler().fit(data)
    z = scaler.transform(data)
    fit = _fastica(z, seed, max_iter, tol) if solver == "fastica" else _picard(z, seed, max_iter, tol)
    change = fit.pop("change")
    # sources = ((x - mu) / sigma - mean) @ W.T  ==  (x - center) @ (W / sigma).T
    unmix = fit.pop("components") / scaler.scale_[None, :]
    center = scaler.mean_ + fit.pop("mean") * scaler.scale_
    return {
        "directions": torch.from_numpy(unmix).float(),
        "center": torch.from_numpy(center).float(),
        "final_change": float(change.max()),
        "median_change": float(np.median(change)),
        "stable_share": float((change < tol).mean()),
        **fit,
    }


def _fastica_change(w, white):
    """FastICA's per-component stopping statistic | |w_new . w| - 1 | for one symmetric logcosh step from the
    orthogonal unmixing ``w`` [c, c] on whitened data ``white`` [c, n] (unit variance rows)."""
    import numpy as np

    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    g = np.tanh(w @ white)
    step = g @ white.T / white.shape[1] - (1 - g**2).mean(1)[:, None] * w
    s, u = np.linalg.eigh(step @ step.T)
    w1 = (u * (1.0 / np.sqrt(np.clip(s, 1e-30, None)))) @ u.T @ step  # symmetric decorrelation, as sklearn
    return np.abs(np.abs(np.einsum("ij,ij->i", w1, w)) - 1)


def _fastica(z, seed: int, max_iter: int, tol: float) -> dict:
    import numpy as np
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    # FastICA calls scipy's eigh on a d x d matrix every iteration; on a few thousand rows multi-threaded OpenBLAS
    # makes that 30x slower on a 2-core machine (busy-waiting threads); on many rows the d x n products dominate
    threads = 1 if len(z) < 32_768 else None
    with threadpool_limits(threads, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ica = FastICA(random_state=seed, max_iter=max_iter, tol=tol, whiten="unit-variance").fit(z)
        # sklearn rescaled the orthogonal unmixing W's rows to unit-variance sources; undo it, take one more step
        w = ica._unmixing / np.linalg.norm(ica._unmixing, axis=1, keepdims=True)
        white = np.sqrt(len(z)) * (ica.whitening_ @ (z - ica.mean_).T)  # [components, n], as FastICA saw it
        change = _fastica_change(w, white)
    return {
        "components": ica.components_,
        "mean": ica.mean_,
        "change": change,
        "n_iter": int(ica.n_iter_),
        "converged": bool(ica.n_iter_ < max_iter),
        "trace": [],
    }


PICARD_BLOCK = 25  # iterations between checks of FastICA's stopping rule (L-BFGS memory restarts at each)


def _picard(z, seed: int, max_iter: int, tol: float) -> dict:
    import numpy as np
    from picard import picard

    mean = z.mean(0)
    s, u = np.linalg.eigh(np.cov(z - mean, rowvar=False, bias=True))
    whitening = (u / np.sqrt(s)).T  # [c, d]: PCA whitening, unit-variance rows, as sklearn's
    white = whitening @ (z - mean).T
    w, n_iter, trace = None, 0, []
    while n_iter < max_iter:
        with warnings.catch_warnings():  # "did not converge": Picard's own gradient tolerance, not the rule used
            warnings.simplefilter("ignore", UserWarning)
            _, w, _, ran = picard(
                white,
                ortho=True,
                extended=True,
                fun="tanh",
                whiten=False,
                w_init=w,
                max_iter=min(PICARD_BLOCK, max_iter - n_iter),
                tol=1e-9,
                random_state=seed,
                return_n_iter=True,
            )
        n_iter += max(int(ran), 1)
        change = _fastica_change(w, white)
        trace.append([n_iter, float(change.max()), float(np.median(change))])
        if change.max() < tol:
            break
    return {
        "components": w @ whitening,
        "mean": mean,
        "change": change,
        "n_iter": n_iter,
        "converged": bool(change.max() < tol),
        "trace": trace,
    }


def orient_ica(directions: torch.Tensor, center: torch.Tensor, x: torch.Tensor, orient: str) -> LinearDictionary:
    if orient == "both":
        return LinearDictionary("ICA (both signs)", _both_signs(directions), center)
    if orient == "heavy_tail":
        sources = (x.float() - center) @ directions.T
        upper = sources.quantile(0.999, dim=0)
        lower = -sources.quantile(0.001, dim=0)
        directions = directions * torch.where(upper >= lower, 1.0, -1.0)[:, None]
        return LinearDictionary("ICA (heavy tail +)", directions, center)
    return LinearDictionary("ICA (paper)", directions, center)


def fit_ica(x: torch.Tensor, orient: str = "paper", seed: int = 0, max_iter: int = 400) -> LinearDictionary:
    """FastICA in one orientation: ``paper`` ranks each component's positive tail only (the released code);
    ``heavy_tail`` flips each component so its heavier tail is positive (the 2026 re-evaluation's "fixed ICA");
    ``both`` keeps both signs (2 x d features)."""
    if orient not in ICA_ORIENTATIONS:
        raise ValueError(f"orient must be one of {ICA_ORIENTATIONS}, got {orient!r}")
    directions, center, _ = fit_ica_unmixing(x, seed, max_iter)
    return orient_ica(directions, center, x, orient)


def neuron_basis(d: int) -> LinearDictionary:
    return LinearDictionary("neuron basis", _both_signs(torch.eye(d)), torch.zeros(d))


def random_directions(d: int, n: int, seed: int = 0) -> LinearDictionary:
    gen = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n, d, generator=gen)
    return LinearDictionary("random", dirs / dirs.norm(dim=-1, keepdim=True), torch.zeros(d))


def mean_l0(dictionary, x: torch.Tensor) -> float:
    """Mean number of active features per row of ``x``, for matching top-k baselines to an SAE."""
    with torch.no_grad():
        acts = dictionary.encode(x)
    return float((acts > 0).float().sum(-1).mean())
