"""SAELens's on-disk format: export any saelib SAE, and load any SAELens folder of the architectures saelib runs.

A SAELens folder holds ``cfg.json`` and ``sae_weights.safetensors`` with ``W_enc`` [d_in, d_sae], ``b_enc`` [d_sae],
``W_dec`` [d_sae, d_in] and ``b_dec`` [d_in] (JumpReLU adds ``threshold`` [d_sae]); SAELens computes
``z = (x - b_dec·apply_b_dec_to_input) W_enc + b_enc``, then ``f = ReLU(z)`` (standard), the k largest of ReLU(z)
(topk) or ``ReLU(z)·1[z > threshold]`` (jumprelu), and ``x̂ = f W_dec + b_dec``, on raw activations. saelib's SAEs
scale activations by ``input_scale`` first, so the export folds the scale into the weights (a raw export marked
``expected_average_only_in`` would load silently and be off by the scale):

- tied (Cunningham et al.): ``W_enc = s·M̂ᵀ``, ``W_dec = M̂ / s``, ``b_enc = b``, ``b_dec = 0``;
- untied (Bricken et al.), topk, batchtopk, jumprelu: ``W_enc = s·W_eᵀ``, ``W_dec = W_dᵀ / s``, ``b_enc = b_e``,
  ``b_dec = b_d / s`` with ``apply_b_dec_to_input = true``. Pre-activations are unchanged by the folding, so
  thresholds are too. topk writes ``k``; batchtopk ships as ``jumprelu`` with its one inference threshold broadcast
  to every latent and ``metadata.training_architecture = "batchtopk"``, as SAELens saves it.

Loading maps ``standard`` onto saelib's untied SAE, ``topk`` onto its TopK SAE and ``jumprelu`` onto its JumpReLU SAE,
all with ``input_scale = 1``; every field and tensor is validated and an error names the file and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, cast

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from saelib.core.artifacts import atomic_write_json
from saelib.dictionaries.sae.base import SAE, SAEConfig
from saelib.dictionaries.sae.batchtopk import BatchTopKSAE
from saelib.dictionaries.sae.jumprelu import JumpReLUSAE
from saelib.dictionaries.sae.tied import TiedSAE
from saelib.dictionaries.sae.topk import TopKSAE
from saelib.dictionaries.sae.untied import UntiedSAE

WEIGHTS, CONFIG = "sae_weights.safetensors", "cfg.json"
SAE_LENS_VERSION = "6.54.12"  # the version the export was checked against (tests/integration)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SAELENS_ARCHITECTURE = {
    "tied": "standard",
    "untied": "standard",
    "topk": "topk",
    "batchtopk": "jumprelu",
    "jumprelu": "jumprelu",
}
TENSORS = {
    "standard": ("W_enc", "b_enc", "W_dec", "b_dec"),
    "topk": ("W_enc", "b_enc", "W_dec", "b_dec"),
    "jumprelu": ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"),
}
MAX_CONFIG_BYTES = 1 << 20


class UnsupportedSAEError(ValueError):
    """A SAELens folder of an architecture or option saelib cannot run exactly."""


def saelens_weights(sae: SAE) -> dict[str, torch.Tensor]:
    """The four SAELens tensors of a one-member saelib SAE, input scaling folded in (float32)."""
    if sae.cfg.n_models != 1:
        raise ValueError(f"export one member at a time: this SAE holds {sae.cfg.n_models}; use sae.member(i)")
    s = float(sae.cfg.input_scale)
    arch = sae.cfg.architecture
    with torch.no_grad():
        if arch == "tied":
            d = sae.dictionary()[0]  # [n_features, d_in], unit rows
            return {
                "W_enc": (s * d.T).contiguous(),
                "b_enc": cast(TiedSAE, sae).encoder_bias[0].clone(),
                "W_dec": (d / s).contiguous(),
                "b_dec": torch.zeros(sae.cfg.d_in),
            }
        if arch not in SAELENS_ARCHITECTURE:
            raise UnsupportedSAEError(f"cannot export architecture {arch!r}")
        untied = cast(UntiedSAE, sae)  # every architecture but the tied one is an untied SAE
        out = {
            "W_enc": (s * untied.W_enc[0].T).contiguous(),
            "b_enc": untied.b_enc[0].clone(),
            "W_dec": (untied.W_dec[0].T / s).contiguous(),
            "b_dec": untied.b_dec[0] / s,
        }
        if arch == "jumprelu":
            out["threshold"] = cast(JumpReLUSAE, sae).threshold[0].clone()
        if arch == "batchtopk":
            out["threshold"] = cast(BatchTopKSAE, sae).threshold[0].clamp(min=0).expand(sae.cfg.n_features).clone()
        return out


def export_saelens(
    sae: SAE, directory: Path, model_name: str, dtype: str = "float32", extra_metadata: dict | None = None
) -> dict[str, str]:
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
    arch = sae.cfg.architecture
    cfg: dict[str, Any] = {
        "architecture": SAELENS_ARCHITECTURE[arch],
        "d_in": sae.cfg.d_in,
        "d_sae": sae.cfg.n_features,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": arch != "tied",
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": SAE_LENS_VERSION,
            "hook_name": sae.cfg.hook,
            "model_name": model_name,
            "saelib_architecture": arch,
            "saelib_alpha": float(sae.cfg.alphas[0]),
            **(extra_metadata or {}),
        },
    }
    if arch == "topk":
        cfg.update(k=int(sae.cfg.alphas[0]), rescale_acts_by_decoder_norm=False)
    if arch == "batchtopk":
        cfg["metadata"].update(
            training_architecture="batchtopk",
            training_architecture_details={
                "k": int(sae.cfg.alphas[0]),
                "aux_loss_coefficient": sae.cfg.aux_coefficient,
            },
        )
    atomic_write_json(directory / CONFIG, cfg)
    return {CONFIG: str(directory / CONFIG), WEIGHTS: str(directory / WEIGHTS)}


def load_saelens(
    directory: Path, model_name: str | None = None, hook: str | None = None, width: int | None = None
) -> SAE:
    """A SAELens folder (``standard``, ``topk`` or ``jumprelu``) as a one-member saelib SAE (exact; computed in
    float32). With ``model_name``/``hook``/``width`` given, a dictionary for another model, hook or width is an
    error. Every problem with the folder raises ``UnsupportedSAEError`` naming the file and the field."""
    directory = Path(directory)
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name} is missing: a SAELens folder holds {CONFIG} and {WEIGHTS}")
    raw = read_saelens_config(directory / CONFIG)
    arch, d_in, d_sae, apply_b_dec, meta = _validated_fields(raw, directory / CONFIG)
    w = _validated_tensors(directory / WEIGHTS, arch, d_in, d_sae)
    b_enc = w["b_enc"] if apply_b_dec else w["b_enc"] + w["b_dec"] @ w["W_enc"]
    saelib_arch = {"standard": "untied", "topk": "topk", "jumprelu": "jumprelu"}[arch]
    setting = (
        float(raw["k"])
        if arch == "topk"
        else _number(meta.get("saelib_alpha", 0.0), "metadata.saelib_alpha", directory / CONFIG)
    )
    if arch == "jumprelu" and not (0 < setting <= d_sae):
        setting = float(d_sae)  # a JumpReLU's target L0 is a training setting; a loaded one has none
    cfg = SAEConfig(
        saelib_arch,
        d_in,
        d_sae,
        (setting,),
        str(meta.get("model_name", "") or ""),
        str(meta.get("hook_name", raw.get("hook_name", "")) or ""),
        1.0,
        {"source": str(directory), "saelens_metadata": meta},
    )
    sae = {"untied": UntiedSAE, "topk": TopKSAE, "jumprelu": JumpReLUSAE}[saelib_arch](cfg)
    with torch.no_grad():
        sae.W_enc.copy_(w["W_enc"].T[None])
        sae.b_enc.copy_(b_enc[None])
        sae.W_dec.copy_(w["W_dec"].T[None])
        sae.b_dec.copy_(w["b_dec"][None])
        if arch == "jumprelu":
            cast(JumpReLUSAE, sae).threshold.copy_(w["threshold"][None])
    if model_name is not None or hook is not None or width is not None:
        sae.check_compatible(model_name or cfg.model, hook or cfg.hook, width if width is not None else d_in)
    return sae


def read_saelens_config(path: Path) -> dict[str, Any]:
    """``cfg.json`` as a dict, or ``UnsupportedSAEError`` naming the file and what is wrong."""
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise UnsupportedSAEError(f"{path}: {path.stat().st_size} bytes is too large for a SAELens cfg.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UnsupportedSAEError(f"{path} is not valid JSON ({err}); write it with json.dump") from err
    except RecursionError as err:
        raise UnsupportedSAEError(f"{path} is nested too deeply to be a SAELens config") from err
    if not isinstance(raw, dict):
        raise UnsupportedSAEError(f"{path} holds a JSON {type(raw).__name__}; a SAELens config is a JSON object")
    return raw


def _validated_fields(raw: dict[str, Any], path: Path) -> tuple[str, int, int, bool, dict[str, Any]]:
    arch = raw.get("architecture", "standard")
    if arch not in TENSORS:
        raise UnsupportedSAEError(
            f"{path}: architecture {arch!r} is not supported; saelib runs SAELens "
            f"{sorted(TENSORS)} SAEs. Load this one with sae_lens.SAE.load_from_disk."
        )
    if raw.get("normalize_activations", "none") not in ("none", None):
        raise UnsupportedSAEError(
            f"{path}: normalize_activations={raw['normalize_activations']!r} "
            "needs a scaling factor saelib does not apply; fold it into the weights first"
        )
    if arch == "topk" and raw.get("rescale_acts_by_decoder_norm", False) is not False:
        raise UnsupportedSAEError(
            f"{path}: rescale_acts_by_decoder_norm must be false; fold the decoder norms into "
            "W_enc and b_enc first (SAELens's fold_W_dec_norm)"
        )
    meta = raw.get("metadata", {})
    if not isinstance(meta, dict):
        raise UnsupportedSAEError(f"{path}: field 'metadata' must be a JSON object, got {type(meta).__name__}")
    d_in, d_sae = (_whole(raw, name, path) for name in ("d_in", "d_sae"))
    apply_b_dec = raw.get("apply_b_dec_to_input", True)
    if not isinstance(apply_b_dec, bool):
        raise UnsupportedSAEError(f"{path}: field 'apply_b_dec_to_input' must be true or false, got {apply_b_dec!r}")
    if arch == "topk":
        k = _whole(raw, "k", path)
        if k > d_sae:
            raise UnsupportedSAEError(f"{path}: field 'k' = {k} is larger than d_sae = {d_sae}")
    return arch, d_in, d_sae, apply_b_dec, meta


def _whole(raw: dict[str, Any], name: str, path: Path) -> int:
    if name not in raw:
        raise UnsupportedSAEError(f"{path}: field {name!r} is missing")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer() or value < 1:
        raise UnsupportedSAEError(f"{path}: field {name!r} must be a positive whole number, got {value!r}")
    return int(value)


def _number(value: Any, name: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UnsupportedSAEError(f"{path}: field {name!r} must be a finite number, got {value!r}")
    return float(value)


def _validated_tensors(path: Path, arch: str, d_in: int, d_sae: int) -> dict[str, torch.Tensor]:
    try:
        w = {k: v.float() for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError) as err:
        raise UnsupportedSAEError(f"{path} is not a readable safetensors file ({err})") from err
    expected = TENSORS[arch]
    extra = sorted(set(w) - set(expected))
    if extra:
        hint = " (a 'threshold' belongs to a jumprelu SAE: fix cfg.json's architecture)" if "threshold" in extra else ""
        raise UnsupportedSAEError(f"{path}: unexpected tensors {extra} for architecture {arch!r}{hint}")
    shapes = {
        "W_enc": (d_in, d_sae),
        "b_enc": (d_sae,),
        "W_dec": (d_sae, d_in),
        "b_dec": (d_in,),
        "threshold": (d_sae,),
    }
    bad = {k: tuple(w[k].shape) if k in w else None for k in expected if k not in w or tuple(w[k].shape) != shapes[k]}
    if bad:
        raise UnsupportedSAEError(
            f"{path}: tensors {bad} do not match d_in={d_in}, d_sae={d_sae} "
            f"(expected { {k: shapes[k] for k in expected} })"
        )
    not_finite = [k for k in expected if not torch.isfinite(w[k]).all()]
    if not_finite:
        raise UnsupportedSAEError(f"{path}: tensors {not_finite} hold NaN or infinite values")
    return w
