"""The de-quantized GGUF model, cached once as safetensors so later loads take seconds instead of ~40 s.

Transformers de-quantizes a GGUF file tensor by tensor in Python on every load. The result is deterministic, so the
first load saves it (``save_pretrained``: safetensors, config and tokenizer files; no pickle) into
``artifacts/models/<alias>-<sha256 of the GGUF file, 12 hex>/`` and every later load reads that folder. The key is the
GGUF file's own sha256: a replaced model file gets a new folder, never the old weights. ``SAELIB_MODEL_CACHE=0``
turns the cache off.

The marker file records the sha256 of every weight file written; a load verifies them (once per process and version
of the file: about 1-2 s for the 540 MB of SmolLM2-135M) and a folder whose weights differ, are missing or cannot be
read is removed with a warning, so the caller de-quantizes the GGUF file again and rewrites it. Temporary folders of
writes that were killed are removed once they are an hour old. A write that fails (a full disk) leaves no folder
and a warning; the model loaded from the GGUF file is used as it is.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from saelib.core.artifacts import atomic_write_json, read_json
from saelib.core.paths import artifacts_dir

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MARKER = "saelib_model_cache.json"


def enabled() -> bool:
    return os.environ.get("SAELIB_MODEL_CACHE", "1") not in ("0", "false", "no")


def cache_dir(alias: str, gguf_sha256: str) -> Path:
    return artifacts_dir() / "models" / f"{alias}-{gguf_sha256[:12]}"


STALE_TMP_S = 3600.0  # a temporary folder this old belongs to a write that was killed (a write takes under a minute)


def load_cached(alias: str, gguf_sha256: str, device: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase] | None:
    """(model, tokenizer) from a complete cache folder whose marker names this GGUF file and whose weight files have
    the recorded sha256, else None (a damaged folder is removed, with a warning, so the next write replaces it)."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cache_dir(alias, gguf_sha256)
    if not (folder / MARKER).is_file():
        return None
    problem = _verify(folder, gguf_sha256)
    if problem is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
            return model.to(device), tokenizer  # type: ignore[arg-type]  # transformers' @wraps(Module.to)
        except (OSError, ValueError, SafetensorError) as err:
            problem = f"cannot be loaded ({type(err).__name__}: {err})"
    warnings.warn(f"model cache {folder} {problem}; removing it and de-quantizing the GGUF file again", stacklevel=2)
    shutil.rmtree(folder, ignore_errors=True)
    return None


def _verify(folder: Path, gguf_sha256: str) -> str | None:
    """None when the marker names this GGUF file and every recorded weight file has its sha256, else what is wrong."""
    from saelib.model.loader import _file_sha256

    try:
        marker = read_json(folder / MARKER)
    except (OSError, ValueError) as err:
        return f"has an unreadable marker ({err})"
    if not isinstance(marker, dict) or marker.get("gguf_sha256") != gguf_sha256:
        return "has a marker for another GGUF file"
    weights = marker.get("weights_sha256")
    if not isinstance(weights, dict) or not weights:
        return "records no sha256 of its weights"
    for name, sha in weights.items():
        path = folder / name
        if Path(name).name != name or not path.is_file():
            return f"lacks its weight file {name}"
        if _file_sha256(path) != sha:
            return f"has a weight file {name} whose sha256 differs from the one recorded when it was written"
    return None


def save_cache(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, alias: str, gguf_sha256: str, gguf_file: str
) -> Path | None:
    """Write the folder under a unique temporary name, then rename it into place: a killed or concurrent first load
    leaves either no cache or a complete one. A write that fails with an ``OSError`` (a full disk) warns and returns
    None: the model in hand is complete, only the cache is missing."""
    from saelib.model.loader import _file_sha256

    folder = cache_dir(alias, gguf_sha256)
    remove_stale_tmp(folder.parent)
    if (folder / MARKER).is_file():
        return folder
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        _save_dequantized(model, tmp)
        tokenizer.save_pretrained(tmp)
        weights = {p.name: _file_sha256(p) for p in sorted(tmp.glob("*.safetensors"))}
        atomic_write_json(
            tmp / MARKER,
            {"alias": alias, "gguf_file": gguf_file, "gguf_sha256": gguf_sha256, "weights_sha256": weights},
        )
        if folder.exists():  # an incomplete folder left by an older layout: replace it
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as err:
        if not (folder / MARKER).is_file():
            warnings.warn(
                f"could not write the model cache {folder} ({err}); the model is used without it and the "
                "next load de-quantizes the GGUF file again (free disk space, or set "
                "SAELIB_MODEL_CACHE=0 to stop trying)",
                stacklevel=2,
            )
            return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def remove_stale_tmp(models_dir: Path, older_than_s: float = STALE_TMP_S) -> None:
    """Remove temporary folders (``.<name>.tmp-*``) left by writes that were killed: those older than
    ``older_than_s``; younger ones may belong to a write still in progress."""
    if not models_dir.is_dir():
        return
    now = time.time()
    for tmp in models_dir.glob(".*.tmp-*"):
        try:
            if tmp.is_dir() and now - tmp.stat().st_mtime > older_than_s:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def _save_dequantized(model: PreTrainedModel, folder: Path) -> None:
    """``save_pretrained`` refuses a model loaded from GGUF ("quantized with gguf, not serializable") although its
    weights are already plain float32: save it as the plain model it is, without the GGUF quantizer and its config
    entry (which would send the reload back to the GGUF file)."""
    quantizer = getattr(model, "hf_quantizer", None)
    quant_config = model.config.__dict__.pop("quantization_config", None)
    # torch types Module.__setattr__'s value as Tensor | Module; a plain attribute such as this one takes any value
    model.hf_quantizer = None  # type: ignore[assignment]
    try:
        model.save_pretrained(folder, safe_serialization=True)
    finally:
        model.hf_quantizer = quantizer  # type: ignore[assignment]
        if quant_config is not None:
            model.config.quantization_config = quant_config
