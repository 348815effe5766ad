"""SAELens's on-disk format: export any saelib SAE, and load any SAELens "standard" (ReLU) SAE folder.

A SAELens folder holds ``cfg.json`` and ``sae_weights.safetensors`` with ``W_enc`` [d_in, d_sae], ``b_enc`` [d_sae],
``W_dec`` [d_sae, d_in] and ``b_dec`` [d_in]; SAELens computes ``f = ReLU((x - b_dec·apply_b_dec_to_input) W_enc +
b_enc)`` and ``x̂ = f W_dec + b_dec`` on raw activations. saelib's SAEs scale activations by ``input_scale`` first,
so the export folds the scale into the weights (a raw export marked ``expected_average_only_in`` would load
silently and be off by the scale):

- tied (Cunningham et al.): ``W_enc = s·M̂ᵀ``, ``W_dec = M̂ / s``, ``b_enc = b``, ``b_dec = 0``;
- untied (Bricken et al.): ``W_enc = s·W_eᵀ``, ``W_dec = W_dᵀ / s``, ``b_enc = b_e``, ``b_dec = b_d / s`` with
  ``apply_b_dec_to_input = true`` (Bricken's pre-encoder bias is the decoder bias).

Loading maps a SAELens folder exactly onto saelib's untied SAE with ``input_scale = 1``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from saelib.core.artifacts import atomic_write_json
from saelib.dictionaries.sae.base import SAE, SAEConfig
from saelib.dictionaries.sae.untied import UntiedSAE

WEIGHTS, CONFIG = "sae_weights.safetensors", "cfg.json"
SAE_LENS_VERSION = "6.54.12"  # the version the export was checked against (tests/integration)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class UnsupportedSAEError(ValueError):
    """A SAELens folder of an architecture or option saelib cannot run exactly."""


def saelens_weights(sae: SAE) -> dict[str, torch.Tensor]:
    """The four SAELens tensors of a one-member saelib SAE, input scaling folded in (float32)."""
    if sae.cfg.n_models != 1:
        raise ValueError(f"export one member at a time: this SAE holds {sae.cfg.n_models}; use sae.member(i)")
    s = float(sae.cfg.input_scale)
    with torch.no_grad():
        if sae.cfg.architecture == "tied":
            d = sae.dictionary()[0]  # [n_features, d_in], unit rows
            return {"W_enc": (s * d.T).contiguous(), "b_enc": sae.encoder_bias[0].clone(),
                    "W_dec": (d / s).contiguous(), "b_dec": torch.zeros(sae.cfg.d_in)}
        if sae.cfg.architecture == "untied":
            return {"W_enc": (s * sae.W_enc[0].T).contiguous(), "b_enc": sae.b_enc[0].clone(),
                    "W_dec": (sae.W_dec[0].T / s).contiguous(), "b_dec": sae.b_dec[0] / s}
    raise UnsupportedSAEError(f"cannot export architecture {sae.cfg.architecture!r}")


def export_saelens(sae: SAE, directory: Path, model_name: str, dtype: str = "float32",
                   extra_metadata: dict | None = None) -> dict[str, str]:
    """Write ``sae`` (one member) as a SAELens folder; weights stored in ``dtype`` (float16 halves the size).
    Returns {file name: path}. Files are written to temporary names and renamed."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.to(DTYPES[dtype]).contiguous() for k, v in saelens_weights(sae).items()}
    tmp = directory / f".{WEIGHTS}.tmp"
    save_file(weights, str(tmp), metadata={"format": "pt"})
    tmp.replace(directory / WEIGHTS)
    cfg = {
        "architecture": "standard", "d_in": sae.cfg.d_in, "d_sae": sae.cfg.n_features, "dtype": "float32",
        "device": "cpu", "apply_b_dec_to_input": sae.cfg.architecture == "untied", "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {"sae_lens_version": SAE_LENS_VERSION, "hook_name": sae.cfg.hook, "model_name": model_name,
                     "saelib_architecture": sae.cfg.architecture, "saelib_alpha": float(sae.cfg.alphas[0]),
                     **(extra_metadata or {})},
    }
    atomic_write_json(directory / CONFIG, cfg)
    return {CONFIG: str(directory / CONFIG), WEIGHTS: str(directory / WEIGHTS)}


def load_saelens(directory: Path, model_name: str | None = None, hook: str | None = None,
                 width: int | None = None) -> UntiedSAE:
    """A SAELens "standard" SAE folder as a one-member saelib SAE (exact; computed in float32). With
    ``model_name``/``hook``/``width`` given, a dictionary for another model, hook or width is an error."""
    directory = Path(directory)
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name} is missing: a SAELens folder holds {CONFIG} and {WEIGHTS}")
    raw = json.loads((directory / CONFIG).read_text())
    arch = raw.get("architecture", "standard")
    if arch != "standard":
        raise UnsupportedSAEError(f"{directory / CONFIG}: architecture {arch!r} is not supported; saelib runs "
                                  "SAELens 'standard' (ReLU) SAEs. Load this one with sae_lens.SAE.load_from_disk.")
    if raw.get("normalize_activations", "none") not in ("none", None):
        raise UnsupportedSAEError(f"{directory / CONFIG}: normalize_activations={raw['normalize_activations']!r} "
                                  "needs a scaling factor saelib does not apply; fold it into the weights first")
    w = {k: v.float() for k, v in load_file(str(directory / WEIGHTS)).items()}
    d_in, d_sae = int(raw["d_in"]), int(raw["d_sae"])
    shapes = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    bad = {k: tuple(w[k].shape) if k in w else None for k, s in shapes.items() if k not in w or tuple(w[k].shape) != s}
    if bad:
        raise UnsupportedSAEError(f"{directory / WEIGHTS}: tensors {bad} do not match d_in={d_in}, d_sae={d_sae} "
                                  f"(expected {shapes})")
    meta = raw.get("metadata", {})
    b_enc = w["b_enc"] if raw.get("apply_b_dec_to_input", True) else w["b_enc"] + w["b_dec"] @ w["W_enc"]
    cfg = SAEConfig("untied", d_in, d_sae, (float(meta.get("saelib_alpha", 0.0)),), meta.get("model_name", ""),
                    meta.get("hook_name", raw.get("hook_name", "")) or "", 1.0,
                    {"source": str(directory), "saelens_metadata": meta})
    sae = UntiedSAE(cfg)
    with torch.no_grad():
        sae.W_enc.copy_(w["W_enc"].T[None])
        sae.b_enc.copy_(b_enc[None])
        sae.W_dec.copy_(w["W_dec"].T[None])
        sae.b_dec.copy_(w["b_dec"][None])
    if model_name is not None or hook is not None or width is not None:
        sae.check_compatible(model_name or cfg.model, hook or cfg.hook, width if width is not None else d_in)
    return sae
