"""Decompositions of one layer's activations into features that can be patched one at a time (notebook 03).

Every decomposition here has an **affine decoder**: ``decode(c) = bias + c @ decoder`` with ``decoder`` [F, d] in
raw activation space, and ``encode`` [..., d] -> [..., F]. The part of ``x`` the features do not explain is the
error term ``err(x) = x - decode(encode(x))``; patching keeps it (Cunningham et al.'s recipe,
``recompose = (x - predict(x)) + decode(codes)``), so a patched activation is exact when nothing is patched.

- ``sae_decomposition``: a one-member SAE (the SAE scales its input internally; encode/decode take raw activations).
- ``rotation``: signed coordinates in an invertible basis, ``c = (x - center) @ Wᵀ`` (PCA as a rotation, ICA's
  unmixing matrix, the neuron / residual basis). Exact: the error term is float round-off.
- ``signed_directions``: each basis direction as two non-negative features ``ReLU(±c)`` (the paper's PCA ±).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from saelib.baselines.directions import LinearDictionary
from saelib.dictionaries.sae import SAE
from saelib.dictionaries.sae.base import SAEMismatchError

Tensor = torch.Tensor


@dataclass
class Decomposition:
    name: str
    hook: str  # the hook the decomposition was fitted on
    model: str  # the model it was fitted on
    decoder: Tensor  # [F, d], raw activation space
    bias: Tensor  # [d]
    kind: str  # "sae" | "rotation" | "signed"
    sae: SAE | None = None
    basis: Tensor | None = None  # [m, d] for rotation / signed
    center: Tensor | None = None  # [d]

    @property
    def n_features(self) -> int:
        return self.decoder.shape[0]

    @property
    def d_in(self) -> int:
        return self.decoder.shape[1]

    def encode(self, x: Tensor) -> Tensor:
        """[..., d] -> [..., F]."""
        if x.shape[-1] != self.d_in:
            raise SAEMismatchError(f"{self.name}: activations have width {x.shape[-1]}, it expects {self.d_in}")
        if self.kind == "sae":
            if self.sae is None:
                raise ValueError(f"{self.name}: a decomposition of kind 'sae' holds no SAE")
            return self.sae.encode(x, grad=True)  # differentiable, as the other kinds
        if self.center is None or self.basis is None:
            raise ValueError(f"{self.name}: a {self.kind!r} decomposition needs its basis and center")
        coords = (x - self.center) @ self.basis.T
        return coords if self.kind == "rotation" else torch.cat([coords.relu(), (-coords).relu()], dim=-1)

    def decode(self, codes: Tensor) -> Tensor:
        """[..., F] -> [..., d]."""
        return self.bias + codes @ self.decoder

    def check_compatible(self, model_name: str, hook: str, width: int) -> None:
        """Raise ``SAEMismatchError`` unless fitted on ``hook`` of ``model_name`` with this width."""
        problems = []
        if width != self.d_in:
            problems.append(f"width {width} != {self.d_in}")
        if hook != self.hook:
            problems.append(f"hook {hook!r} != the decomposition's hook {self.hook!r}")
        if model_name != self.model:
            problems.append(f"model {model_name!r} != the decomposition's model {self.model!r}")
        if problems:
            raise SAEMismatchError(
                f"{self.name} does not fit: "
                + "; ".join(problems)
                + ". Use a dictionary trained on this layer of this model."
            )


def sae_decomposition(sae: SAE, name: str | None = None) -> Decomposition:
    """A one-member SAE; its hook and model come from its config (both required)."""
    if sae.cfg.n_models != 1:
        raise ValueError(f"pick one member of the ensemble first (sae.member(i)); it holds {sae.cfg.n_models}")
    if not sae.cfg.hook or not sae.cfg.model:
        raise ValueError("the SAE's config names no hook/model; it cannot be validated against the patched layer")
    with torch.no_grad():
        zeros = torch.zeros(1, sae.cfg.n_features)
        bias = sae.decode(zeros)[0]
        decoder = sae.decode(torch.eye(sae.cfg.n_features)) - bias  # exact for the (linear) SAE decoders here
    label = name or f"SAE α={sae.cfg.alphas[0]:g}"
    return Decomposition(label, sae.cfg.hook, sae.cfg.model, decoder.detach(), bias.detach(), "sae", sae=sae)


def rotation(name: str, basis: Tensor, center: Tensor, hook: str, model: str) -> Decomposition:
    """Coordinates ``(x - center) @ basisᵀ`` for an invertible ``basis`` [d, d]; decoder = its inverse."""
    basis = basis.double()
    if basis.shape[0] != basis.shape[1]:
        raise ValueError(f"a rotation needs a square basis, got {tuple(basis.shape)}")
    decoder = torch.linalg.inv(basis).T  # x - center = c @ inv(B)ᵀ
    return Decomposition(
        name, hook, model, decoder.float(), center.float(), "rotation", basis=basis.float(), center=center.float()
    )


def signed_directions(name: str, basis: Tensor, center: Tensor, hook: str, model: str) -> Decomposition:
    """Each direction of an invertible ``basis`` as two features ReLU(c) and ReLU(-c): 2d features."""
    rot = rotation(name, basis, center, hook, model)
    return Decomposition(
        name,
        hook,
        model,
        torch.cat([rot.decoder, -rot.decoder]),
        rot.bias,
        "signed",
        basis=rot.basis,
        center=rot.center,
    )


def _half(d: LinearDictionary) -> Tensor:
    """The first half of a both-signs LinearDictionary (its rows are [+v; -v])."""
    m = d.n_features // 2
    if d.n_features % 2 or not torch.allclose(d.directions[:m], -d.directions[m:]):
        raise ValueError(f"{d.name} is not a both-signs dictionary")
    return d.directions[:m]


def from_baseline(d: LinearDictionary, hook: str, model: str, signed: bool, name: str | None = None) -> Decomposition:
    """A full-rank both-signs baseline of ``saelib.baselines.directions`` (``fit_pca``, ``fit_ica(orient="both")``,
    ``neuron_basis``) as a rotation (``signed=False``) or as ±directions (``signed=True``)."""
    if d.k is not None:
        raise ValueError("top-k baselines do not reconstruct exactly; pass the full dictionary")
    basis = _half(d)
    build = signed_directions if signed else rotation
    return build(name or d.name, basis, d.center, hook, model)


def fitted_baselines(
    store, hook: str, model: str, n_rows: int, seed: int = 0, ica_max_iter: int = 200, shipped_ica=None
) -> dict[str, Decomposition]:
    """PCA (rotation and ±), ICA (signed sources) and the neuron basis, fitted on ``n_rows`` training activations of
    ``hook`` drawn as notebook 02 draws them (``saelib.interp.comparison``), so the cached FastICA fit is shared;
    ``shipped_ica`` (``saelib.baselines.shipped``) replaces the ICA fit with the shipped one."""
    from saelib.baselines.directions import fit_pca
    from saelib.interp.comparison import fit_sample, ica_unmixing

    x = fit_sample(store, hook, n_rows, seed)
    pca = fit_pca(x)
    directions, center, _ = ica_unmixing(store, hook, x, seed, ica_max_iter, shipped_ica)
    return {
        "PCA rotation": rotation("PCA rotation", pca.directions[: pca.n_features // 2], pca.center, hook, model),
        "PCA ±": signed_directions("PCA ±", pca.directions[: pca.n_features // 2], pca.center, hook, model),
        "ICA": rotation("ICA", directions, center, hook, model),
        "neuron basis": rotation("neuron basis", torch.eye(x.shape[1]), torch.zeros(x.shape[1]), hook, model),
    }
