"""What every SAE shares: its config, the encode/decode interface, and saving and loading with validation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from saelib.core.artifacts import atomic_write_json

Tensor = torch.Tensor


class SAEMismatchError(ValueError):
    """An SAE applied to a hook or model it was not trained on (or of another width)."""


@dataclass(frozen=True)
class SAEConfig:
    architecture: str  # "tied" (Cunningham et al.) or "untied" (Bricken et al.)
    d_in: int
    n_features: int
    alphas: tuple[float, ...]  # one sparsity penalty per ensemble member
    model: str = ""  # model the activations came from
    hook: str = ""  # hook point, e.g. blocks.8.hook_resid_post
    input_scale: float = 1.0  # activations are multiplied by this before encoding (and divided after decoding)
    extra: dict[str, Any] = field(default_factory=dict)  # data budget, seed, metrics, ...

    def __post_init__(self) -> None:
        if self.d_in <= 0 or self.n_features <= 0:
            raise ValueError(f"d_in and n_features must be positive, got {self.d_in}, {self.n_features}")
        if not self.alphas or any(not (a >= 0) for a in self.alphas):  # also rejects NaN
            raise ValueError(f"alphas must be non-negative numbers, got {self.alphas}")
        if not (self.input_scale > 0):
            raise ValueError(f"input_scale must be positive, got {self.input_scale}")

    @property
    def ratio(self) -> float:
        return self.n_features / self.d_in

    @property
    def n_models(self) -> int:
        return len(self.alphas)


class SAE(torch.nn.Module):
    """Ensemble SAE interface. Shapes: x [batch, d_in]; codes [model, batch, n_features]; x_hat [model, batch, d_in].
    A single-member ensemble also accepts and returns un-batched-by-model tensors via ``encode1``/``decode1``."""

    cfg: SAEConfig

    def __init__(self, cfg: SAEConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("alphas", torch.tensor(cfg.alphas, dtype=torch.float32))

    @property
    def device(self) -> torch.device:
        return self.alphas.device

    def encode(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, codes: Tensor) -> Tensor:
        raise NotImplementedError

    def dictionary(self) -> Tensor:
        """Unit-norm feature directions in activation space, [model, n_features, d_in]."""
        raise NotImplementedError

    def loss_terms(self, x: Tensor, member: int | None = None) -> dict[str, Tensor]:
        """Per-member reconstruction and sparsity terms ([model] each) plus codes and reconstruction; with
        ``member`` only that member's (shapes keep a leading axis of 1; gradients reach the shared tensors)."""
        sl = slice(None) if member is None else slice(member, member + 1)
        return self.loss_from_params(x, {name: p[sl] for name, p in self.named_parameters()}, self.alphas[sl])

    def loss_from_params(self, x: Tensor, params: dict[str, Tensor], alphas: Tensor) -> dict[str, Tensor]:
        """``loss_terms`` computed from ``params`` (this SAE's parameters by name, each with a leading axis of k
        members) and ``alphas`` [k]: training passes one member's slices as leaf tensors of their own, so its
        backward writes a slice-sized gradient instead of a zero-filled full-size one per member."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def after_step(self) -> None:
        """Hook for constraints that are projections after an optimizer step (none by default)."""

    def before_step(self) -> None:
        """Hook for gradient edits before an optimizer step (none by default)."""

    def member(self, i: int) -> "SAE":
        """Member ``i`` as a one-member ensemble (a copy)."""
        cfg = replace(self.cfg, alphas=(self.cfg.alphas[i],), extra=dict(self.cfg.extra))
        one = type(self)(cfg)
        one.load_state_dict({k: (v[i : i + 1] if v.dim() and k != "alphas" else v)
                             for k, v in self.state_dict().items() if k != "alphas"}, strict=False)
        return one

    def encode1(self, x: Tensor) -> Tensor:
        """Codes of a one-member SAE for x [..., d_in] -> [..., n_features]."""
        self._check_single()
        shape = x.shape
        return self.encode(x.reshape(-1, shape[-1]))[0].reshape(*shape[:-1], -1)

    def encode1_features(self, x: Tensor, features: Tensor) -> Tensor:
        """Codes of a one-member SAE restricted to ``features`` [k] (indices): x [n, d_in] -> [n, k]. ReLU
        architectures override it to compute only those columns (notebook 02 scores 150 of each dictionary's 1,152)."""
        return self.encode1(x)[:, features]

    def decode1(self, codes: Tensor) -> Tensor:
        self._check_single()
        shape = codes.shape
        return self.decode(codes.reshape(1, -1, shape[-1]))[0].reshape(*shape[:-1], -1)

    def _check_single(self) -> None:
        if self.cfg.n_models != 1:
            raise ValueError(f"this SAE holds {self.cfg.n_models} members; pick one with .member(i)")

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


def save_sae(sae: SAE, directory: Path) -> None:
    """Weights as ``sae.safetensors`` and ``config.json`` beside them; both written atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / ".sae.safetensors.tmp"
    save_file({k: v.detach().contiguous() for k, v in sae.state_dict().items()}, str(tmp))
    tmp.replace(directory / "sae.safetensors")
    atomic_write_json(directory / "config.json", asdict(sae.cfg))


def load_sae(directory: Path, model_name: str | None = None, hook: str | None = None,
             width: int | None = None) -> SAE:
    """Load an SAE saved by ``save_sae``; if model/hook/width are given, validate the SAE against them."""
    from saelib.dictionaries.sae.tied import TiedSAE
    from saelib.dictionaries.sae.untied import UntiedSAE

    directory = Path(directory)
    raw = json.loads((directory / "config.json").read_text())
    cfg = SAEConfig(**{**raw, "alphas": tuple(raw["alphas"])})
    cls = {"tied": TiedSAE, "untied": UntiedSAE}[cfg.architecture]
    sae = cls(cfg)
    sae.load_state_dict(load_file(str(directory / "sae.safetensors")))
    if model_name is not None or hook is not None or width is not None:
        sae.check_compatible(model_name or cfg.model, hook or cfg.hook, width if width is not None else cfg.d_in)
    return sae


def attach_metrics(directory: Path, rows: list[dict[str, Any]]) -> None:
    """Store evaluation metrics (one dict per member, in alpha order) in the ``config.json`` beside the weights."""
    path = Path(directory) / "config.json"
    raw = json.loads(path.read_text())
    raw["extra"] = {**raw.get("extra", {}), "metrics": rows}
    atomic_write_json(path, raw)
