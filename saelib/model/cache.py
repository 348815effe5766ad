"""The de-quantized GGUF model, cached once as safetensors so later loads take seconds instead of ~40 s.

Transformers de-quantizes a GGUF file tensor by tensor in Python on every load. The result is deterministic, so the
first load saves it (``save_pretrained``: safetensors, config and tokenizer files; no pickle) into
``artifacts/models/<alias>-<sha256 of the GGUF file, 12 hex>/`` and every later load reads that folder. The key is the
GGUF file's own sha256: a replaced model file gets a new folder, never the old weights. ``SAELIB_MODEL_CACHE=0``
turns the cache off.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import torch

from saelib.core.artifacts import atomic_write_json, read_json
from saelib.core.paths import artifacts_dir

MARKER = "saelib_model_cache.json"


def enabled() -> bool:
    return os.environ.get("SAELIB_MODEL_CACHE", "1") not in ("0", "false", "no")


def cache_dir(alias: str, gguf_sha256: str) -> Path:
    return artifacts_dir() / "models" / f"{alias}-{gguf_sha256[:12]}"


def load_cached(alias: str, gguf_sha256: str, device: str) -> tuple[torch.nn.Module, object] | None:
    """(model, tokenizer) from a complete cache folder whose marker names this GGUF file, else None."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cache_dir(alias, gguf_sha256)
    marker = folder / MARKER
    if not marker.is_file() or read_json(marker).get("gguf_sha256") != gguf_sha256:
        return None
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    return model.to(device), tokenizer


def save_cache(model: torch.nn.Module, tokenizer, alias: str, gguf_sha256: str, gguf_file: str) -> Path:
    """Write the folder under a unique temporary name, then rename it into place: a killed or concurrent first load
    leaves either no cache or a complete one."""
    folder = cache_dir(alias, gguf_sha256)
    if (folder / MARKER).is_file():
        return folder
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        _save_dequantized(model, tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / MARKER, {"alias": alias, "gguf_file": gguf_file, "gguf_sha256": gguf_sha256})
        if folder.exists():  # an incomplete folder left by an older layout: replace it
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError:
        if not (folder / MARKER).is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _save_dequantized(model: torch.nn.Module, folder: Path) -> None:
    """``save_pretrained`` refuses a model loaded from GGUF ("quantized with gguf, not serializable") although its
    weights are already plain float32: save it as the plain model it is, without the GGUF quantizer and its config
    entry (which would send the reload back to the GGUF file)."""
    quantizer = getattr(model, "hf_quantizer", None)
    quant_config = model.config.__dict__.pop("quantization_config", None)
    model.hf_quantizer = None
    try:
        model.save_pretrained(folder, safe_serialization=True)
    finally:
        model.hf_quantizer = quantizer
        if quant_config is not None:
            model.config.quantization_config = quant_config
