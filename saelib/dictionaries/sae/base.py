"""What every SAE shares: its config, the encode/decode interface (as one dictionary, or member by member in an
ensemble), and saving and loading with validation."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import torch
from safetensors.torch import load_file, save_file

from saelib.core.artifacts import atomic_write_json

if TYPE_CHECKING:
    from saelib.dictionaries.sae.tied import TiedSAE
    from saelib.dictionaries.sae.untied import UntiedSAE

Tensor = torch.Tensor


class SAEMismatchError(ValueError):
    """An SAE applied to a hook or model it was not trained on (or of another width)."""


Architecture = Literal["tied", "untied", "topk", "batchtopk", "jumprelu"]
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)
K_ARCHITECTURES = ("topk", "batchtopk")  # members' sparsity setting is k, the number of active latents


@dataclass(frozen=True)
class SAEConfig:
    """What defines an SAE ensemble. ``alphas`` holds one sparsity setting per member; what it means depends on the
    architecture: the L1 coefficient (tied, untied), k active latents per row (topk) or per row on average over a
    batch (batchtopk), or the target L0 of the L0 penalty (jumprelu)."""

    architecture: str  # one of ARCHITECTURES
    d_in: int
    n_features: int
    alphas: tuple[float, ...]  # one sparsity setting per ensemble member (see the class docstring)
    model: str = ""  # model the activations came from
    hook: str = ""  # hook point, e.g. blocks.8.hook_resid_post
    input_scale: float = 1.0  # activations are multiplied by this before encoding (and divided after decoding)
    extra: dict[str, Any] = field(default_factory=dict)  # data budget, seed, metrics, ...
    # topk and batchtopk: the AuxK loss (Gao et al. 2024, section A.2) on latents silent for dead_after_tokens rows
    aux_k: int = 0  # latents the auxiliary loss reconstructs the residual with; 0 = d_in // 2
    aux_coefficient: float = 1 / 32  # weight of the auxiliary loss against the reconstruction loss
    dead_after_tokens: int = 1_000_000  # training rows without firing after which a latent counts as dead
    # jumprelu: the straight-through estimator's rectangle kernel width and the initial threshold, both in units of
    # the scaled pre-activations (training scales inputs to per-element RMS 1, so pre-activations have RMS about 1;
    # Rajamanoharan et al.'s bandwidth 0.001 assumes inputs of unit norm, about 1/24 of this scale at d_in = 576)
    bandwidth: float = 0.05
    threshold_init: float = 0.1
    l0_coefficient: float = 1.0  # weight of the penalty ((L0 / target) - 1)^2

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {list(ARCHITECTURES)}, got {self.architecture!r}")
        if (
            int(self.d_in) != self.d_in
            or int(self.n_features) != self.n_features
            or self.d_in <= 0
            or self.n_features <= 0
        ):
            raise ValueError(f"d_in and n_features must be positive whole numbers, got {self.d_in}, {self.n_features}")
        if not self.alphas or any(not (a >= 0) for a in self.alphas):  # also rejects NaN
            raise ValueError(f"alphas must be non-negative numbers, got {self.alphas}")
        if self.architecture in K_ARCHITECTURES:
            bad = [k for k in self.alphas if not (1 <= k <= self.n_features and float(k).is_integer())]
            if bad:
                raise ValueError(
                    f"k must be a whole number of latents between 1 and the dictionary's {self.n_features} "
                    f"latents, got {bad}: choose a smaller k or a wider dictionary (ratio)"
                )
        if self.architecture == "jumprelu" and any(not (0 < t <= self.n_features) for t in self.alphas):
            raise ValueError(f"a JumpReLU member's target L0 must be in (0, {self.n_features}], got {self.alphas}")
        if not (self.input_scale > 0):
            raise ValueError(f"input_scale must be positive, got {self.input_scale}")
        if not (
            self.bandwidth > 0
            and self.threshold_init > 0
            and self.aux_coefficient >= 0
            and self.dead_after_tokens > 0
            and 0 <= self.aux_k <= self.n_features
        ):
            raise ValueError(
                "bandwidth, threshold_init and dead_after_tokens must be positive, aux_coefficient "
                f"non-negative and aux_k in [0, n_features]; got {self.bandwidth}, {self.threshold_init}, "
                f"{self.dead_after_tokens}, {self.aux_coefficient}, {self.aux_k}"
            )

    def __repr__(self) -> str:
        """One line: the fields that define the SAE; ``extra`` (training log, metrics, provenance) by its keys only."""
        alphas = ", ".join(f"{a:g}" for a in self.alphas)
        return (
            f"SAEConfig({self.architecture}, d_in={self.d_in}, n_features={self.n_features}, alphas=({alphas}), "
            f"model={self.model!r}, hook={self.hook!r}, input_scale={self.input_scale:.4g}, "
            f"extra keys={sorted(self.extra)})"
        )

    @property
    def ratio(self) -> float:
        return self.n_features / self.d_in

    @property
    def n_models(self) -> int:
        return len(self.alphas)


class SAE(torch.nn.Module):
    """An SAE holds one dictionary or an ensemble of members trained together (one per sparsity setting in alphas).
    encode/decode treat it as one dictionary (SAELens's shapes), encode_members/decode_members as the ensemble."""

    cfg: SAEConfig
    alphas: Tensor  # buffer [model], the members' sparsity settings

    def __init__(self, cfg: SAEConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("alphas", torch.tensor(cfg.alphas, dtype=torch.float32))

    @property
    def device(self) -> torch.device:
        return self.alphas.device

    def encode_members(self, x: Tensor) -> Tensor:
        """Every member's codes: x [batch, d_in] -> [member, batch, n_features] (in the caller's autograd mode)."""
        raise NotImplementedError

    def decode_members(self, codes: Tensor) -> Tensor:
        """Every member's reconstruction: codes [member, batch, n_features] -> [member, batch, d_in]."""
        raise NotImplementedError

    def encode(self, x: Tensor, grad: bool = False) -> Tensor:
        """Codes of a one-dictionary SAE, as SAELens's ``SAE.encode``: x [..., d_in] -> [..., n_features]. Computed
        under ``torch.no_grad()`` unless ``grad`` (then in the caller's autograd mode: gradients reach x and the
        weights). An ensemble of several members raises ``ValueError``: pick one with ``.member(i)``."""
        self._check_single()
        with _autograd(grad):
            shape = x.shape
            return self.encode_members(x.reshape(-1, shape[-1]))[0].reshape(*shape[:-1], -1)

    def decode(self, codes: Tensor, grad: bool = False) -> Tensor:
        """Reconstruction of a one-dictionary SAE, as SAELens's ``SAE.decode``: codes [..., n_features] ->
        [..., d_in] in raw activation space; ``grad`` and ensembles as for ``encode``."""
        self._check_single()
        with _autograd(grad):
            shape = codes.shape
            return self.decode_members(codes.reshape(1, -1, shape[-1]))[0].reshape(*shape[:-1], -1)

    def encode_features(self, x: Tensor, features: Tensor, grad: bool = False) -> Tensor:
        """``encode(x)[..., features]`` for indices ``features`` [k]: x [..., d_in] -> [..., k]. ReLU architectures
        compute only those columns (notebook 02 scores 150 of each dictionary's 1,152); ``grad`` as for ``encode``."""
        self._check_single()
        with _autograd(grad):
            shape = x.shape
            return self._encode_features(x.reshape(-1, shape[-1]), features).reshape(*shape[:-1], len(features))

    def _encode_features(self, x: Tensor, features: Tensor) -> Tensor:
        """The one member's codes of ``features`` for x [n, d_in] -> [n, k]; architectures that can compute a
        subset of columns alone override it."""
        return self.encode(x, grad=True)[:, features]

    def encode1(self, x: Tensor) -> Tensor:
        """Deprecated alias of ``encode(x, grad=True)``."""
        return self.encode(x, grad=True)

    def decode1(self, codes: Tensor) -> Tensor:
        """Deprecated alias of ``decode(codes, grad=True)``."""
        return self.decode(codes, grad=True)

    def encode1_features(self, x: Tensor, features: Tensor) -> Tensor:
        """Deprecated alias of ``encode_features(x, features, grad=True)``."""
        return self.encode_features(x, features, grad=True)

    def dictionary(self) -> Tensor:
        """Unit-norm feature directions in activation space, [model, n_features, d_in]."""
        raise NotImplementedError

    def loss_terms(self, x: Tensor, member: int | None = None) -> dict[str, Tensor]:
        """Per-member reconstruction and sparsity terms ([model] each) plus codes and reconstruction; with
        ``member`` only that member's (shapes keep a leading axis of 1; gradients reach the shared tensors)."""
        sl = slice(None) if member is None else slice(member, member + 1)
        params = {name: p[sl] for name, p in self.named_parameters()}
        return self.loss_from_params(x, {**params, **self.loss_state(sl)}, self.alphas[sl])

    def loss_state(self, members: slice) -> dict[str, Tensor]:
        """Training state the loss reads and updates besides the parameters (views of buffers for ``members``):
        none by default; TopK's dead-latent counters, BatchTopK's threshold."""
        return {}

    def loss_from_params(self, x: Tensor, params: dict[str, Tensor], alphas: Tensor) -> dict[str, Tensor]:
        """``loss_terms`` computed from ``params`` (this SAE's parameters by name, each with a leading axis of k
        members) and ``alphas`` [k]: training passes one member's slices as leaf tensors of their own, so its
        backward writes a slice-sized gradient instead of a zero-filled full-size one per member."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Every member's reconstruction of x [batch, d_in]: [member, batch, d_in]."""
        return self.decode_members(self.encode_members(x))

    def after_step(self) -> None:
        """Hook for constraints that are projections after an optimizer step (none by default)."""

    def before_step(self) -> None:
        """Hook for gradient edits before an optimizer step (none by default)."""

    def member(self, i: int) -> "SAE":
        """Member ``i`` as a one-member ensemble (a copy)."""
        cfg = replace(self.cfg, alphas=(self.cfg.alphas[i],), extra=dict(self.cfg.extra))
        one = type(self)(cfg)
        one.load_state_dict(
            {
                k: (v[i : i + 1] if v.dim() and k != "alphas" else v)
                for k, v in self.state_dict().items()
                if k != "alphas"
            },
            strict=False,
        )
        return one

    def _check_single(self) -> None:
        if self.cfg.n_models != 1:
            raise ValueError(
                f"this SAE is an ensemble of {self.cfg.n_models} members: pick one with .member(i), or use "
                "encode_members/decode_members for all of them"
            )

    def check_compatible(self, model_name: str, hook: str, width: int) -> None:
        """Raise ``SAEMismatchError`` unless this SAE was trained on ``hook`` of ``model_name`` with this width."""
        problems = []
        if width != self.cfg.d_in:
            problems.append(f"width {width} != the SAE's d_in {self.cfg.d_in}")
        if self.cfg.hook and hook != self.cfg.hook:
            problems.append(f"hook {hook!r} != the SAE's hook {self.cfg.hook!r}")
        if self.cfg.model and model_name != self.cfg.model:
            problems.append(f"model {model_name!r} != the SAE's model {self.cfg.model!r}")
        if problems:
            raise SAEMismatchError("SAE does not fit: " + "; ".join(problems))


def _autograd(grad: bool) -> AbstractContextManager[object]:
    """No graph unless ``grad``; with ``grad`` the caller's autograd mode holds."""
    return nullcontext() if grad else torch.no_grad()


def save_sae(sae: SAE, directory: Path) -> None:
    """Weights as ``sae.safetensors`` and ``config.json`` beside them; both written atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / ".sae.safetensors.tmp"
    save_file({k: v.detach().contiguous() for k, v in sae.state_dict().items()}, str(tmp))
    tmp.replace(directory / "sae.safetensors")
    atomic_write_json(directory / "config.json", asdict(sae.cfg))


def load_sae(directory: Path, model_name: str | None = None, hook: str | None = None, width: int | None = None) -> SAE:
    """Load an SAE saved by ``save_sae``; if model/hook/width are given, validate the SAE against them."""
    directory = Path(directory)
    raw = json.loads((directory / "config.json").read_text())
    cfg = SAEConfig(**{**raw, "alphas": tuple(raw["alphas"])})
    sae = sae_class(cfg.architecture)(cfg)
    sae.load_state_dict(load_file(str(directory / "sae.safetensors")))
    if model_name is not None or hook is not None or width is not None:
        sae.check_compatible(model_name or cfg.model, hook or cfg.hook, width if width is not None else cfg.d_in)
    return sae


def sae_class(architecture: str) -> type[TiedSAE] | type[UntiedSAE]:
    """The saelib class that implements ``architecture`` (every one takes ``(cfg, seed=0)``; all but the tied SAE
    are untied SAEs with another activation function and loss)."""
    from saelib.dictionaries.sae.batchtopk import BatchTopKSAE
    from saelib.dictionaries.sae.jumprelu import JumpReLUSAE
    from saelib.dictionaries.sae.tied import TiedSAE
    from saelib.dictionaries.sae.topk import TopKSAE
    from saelib.dictionaries.sae.untied import UntiedSAE

    classes: dict[str, type[TiedSAE] | type[UntiedSAE]] = {
        "tied": TiedSAE,
        "untied": UntiedSAE,
        "topk": TopKSAE,
        "batchtopk": BatchTopKSAE,
        "jumprelu": JumpReLUSAE,
    }
    if architecture not in classes:
        raise ValueError(f"architecture must be one of {sorted(classes)}, got {architecture!r}")
    return classes[architecture]


def attach_metrics(directory: Path, rows: list[dict[str, Any]]) -> None:
    """Store evaluation metrics (one dict per member, in alpha order) in the ``config.json`` beside the weights."""
    path = Path(directory) / "config.json"
    raw = json.loads(path.read_text())
    raw["extra"] = {**raw.get("extra", {}), "metrics": rows}
    atomic_write_json(path, raw)
