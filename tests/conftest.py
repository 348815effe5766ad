"""Shared fixtures. A tiny randomly initialised GPT-NeoX (the paper's Pythia architecture) saved to a temporary
folder exercises the general "any Hugging Face causal LM or local directory" path offline and in seconds."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

# the simulated accelerator registers its backend at import: before the first backward pass of the session, since
# autograd's engine sizes its per-device queues then and a backend registered later fails an internal assert
import simulated_device  # noqa: E402,F401


@pytest.fixture(autouse=True)
def isolated_artifacts(tmp_path, monkeypatch):
    """Unit tests never touch the real artifacts folder unless they ask for it."""
    monkeypatch.setenv("SAELIB_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("SAELIB_FIGURES", str(tmp_path / "figures"))
    return tmp_path / "artifacts"


@pytest.fixture(scope="session")
def default_tokenizer():
    from transformers import AutoTokenizer

    from saelib.model.loader import _GGUF_MODELS, _gguf_location

    directory, filename = _gguf_location("smollm2-135m-instruct")
    assert filename == _GGUF_MODELS["smollm2-135m-instruct"][2]
    return AutoTokenizer.from_pretrained(directory, gguf_file=filename)


@pytest.fixture(scope="session")
def tiny_neox_dir(tmp_path_factory, default_tokenizer):
    """A 2-layer GPT-NeoX with random weights and the default tokenizer, saved like a downloaded checkpoint."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    cfg = GPTNeoXConfig(
        vocab_size=len(default_tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=512,
    )
    path = tmp_path_factory.mktemp("tiny-neox")
    GPTNeoXForCausalLM(cfg).save_pretrained(path)
    default_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_neox_dir):
    from saelib.model.loader import load_model

    return load_model(str(tiny_neox_dir))


@pytest.fixture()
def tiny_store(tiny_model):
    """``tiny_store(hooks, n, length)``: an activation store of ``n`` random-token contexts from the tiny model."""
    import numpy as np

    from saelib.activations.harvest import harvest
    from saelib.text.corpus import PackedContexts

    def make(hooks: list[str], n: int, length: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        ctx = PackedContexts(
            tokens=rng.integers(5, 1000, size=(n, length)),
            source=np.zeros(n, dtype=int),
            offset=np.arange(n) * length,
            sources=("toy",),
            repeats={"toy": 1.0},
        )
        return harvest(tiny_model, hooks, ctx, corpus_name="toy", batch_size=8, progress=False)

    return make


@pytest.fixture(
    params=[
        "cpu",
        "simulated",
        pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
    ]
)
def device(request):
    """Where a device test puts the model and the SAEs: the CPU; a simulated accelerator (``simulated_device.py``:
    real numbers computed on the CPU, and the errors a GPU raises when a tensor is left on the wrong side), named
    ``"simgpu"``; or a CUDA device where there is one."""
    if request.param == "simulated":
        from simulated_device import simulated_device

        with simulated_device():
            yield "simgpu"
    else:
        yield request.param
