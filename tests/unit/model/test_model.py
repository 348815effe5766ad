"""The general loading path (any HF causal LM / local directory) on a tiny random GPT-NeoX, offline."""

import pytest
import torch

from saelib.model.loader import (
    ModelNotAvailableError,
    UnknownHookError,
    hook_width,
    load_model,
    model_info,
    validate_hooks,
)
from saelib.model.hooks import stop_layer


def test_local_directory_loads_with_hooks(tiny_model):
    info = model_info(tiny_model)
    assert info.architecture == "GPTNeoXForCausalLM" and info.n_layers == 2 and info.d_model == 64
    assert not any(p.requires_grad for p in tiny_model.parameters())
    assert not tiny_model.training
    _, cache = tiny_model.run_with_cache(torch.tensor([[1, 2, 3]]), names_filter="blocks.1.hook_resid_post")
    assert cache["blocks.1.hook_resid_post"].shape == (1, 3, 64)
    assert hook_width(tiny_model, "blocks.0.mlp.hook_post") == 256


def test_loaded_once_per_process(tiny_neox_dir, tiny_model):
    # two calls in a row share one object (the session's tiny_model may have left the 2-entry cache if other tests
    # loaded the default model in between: that order dependence made this test fail once)
    first = load_model(str(tiny_neox_dir))
    assert load_model(str(tiny_neox_dir)) is first


def test_unknown_hook_lists_valid_ones(tiny_model):
    with pytest.raises(UnknownHookError) as err:
        validate_hooks(tiny_model, ["blocks.7.hook_resid_post", "blocks.0.hook_resid_post"])
    msg = str(err.value)
    assert "blocks.7.hook_resid_post" in msg and "blocks.{layer}.hook_resid_post" in msg and "0..1" in msg


def test_missing_model_says_how_to_provide_weights():
    with pytest.raises(ModelNotAvailableError, match="huggingface-cli download"):
        load_model("EleutherAI/pythia-70m-deduped")


def test_stop_layer():
    assert stop_layer(["hook_embed"]) == 0
    assert stop_layer(["blocks.1.hook_resid_post", "blocks.4.hook_resid_post"]) == 5
    assert stop_layer(["ln_final.hook_normalized"]) is None


# ------------------------------------------------------------------ the model cache, on the tiny model


@pytest.fixture()
def tiny_hf(tiny_neox_dir, default_tokenizer):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_neox_dir, dtype=torch.float32), default_tokenizer


SHA = "ab" * 32


def test_model_cache_round_trip_records_the_weights_sha256(tiny_hf):
    from saelib.core.artifacts import read_json
    from saelib.model import cache

    folder = cache.save_cache(*tiny_hf, "tiny", SHA, "tiny.gguf")
    assert set(read_json(folder / cache.MARKER)["weights_sha256"]) == {"model.safetensors"}
    model, _ = cache.load_cached("tiny", SHA, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), tiny_hf[0].state_dict().values()))


def test_modified_weights_in_the_model_cache_are_not_loaded(tiny_hf):
    from safetensors.torch import load_file, save_file

    from saelib.model import cache

    folder = cache.save_cache(*tiny_hf, "tiny", SHA, "tiny.gguf")
    weights = load_file(folder / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] + 1  # a valid safetensors file with other weights
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.warns(UserWarning, match="sha256 differs"):
        assert cache.load_cached("tiny", SHA, "cpu") is None
    assert not folder.exists()  # removed, so the next load writes it again
    assert cache.save_cache(*tiny_hf, "tiny", SHA, "tiny.gguf") == folder and cache.load_cached("tiny", SHA, "cpu")


def test_a_truncated_model_cache_is_rebuilt_not_an_error(tiny_hf):
    from saelib.model import cache

    folder = cache.save_cache(*tiny_hf, "tiny", SHA, "tiny.gguf")
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="removing it"):
        assert cache.load_cached("tiny", SHA, "cpu") is None
    assert not folder.exists()


def test_stale_temporary_folders_are_removed(tiny_hf):
    import os
    import time

    from saelib.model import cache

    models = cache.cache_dir("tiny", SHA).parent
    stale, fresh = models / ".tiny-abababababab.tmp-0000dead", models / ".tiny-abababababab.tmp-00000new"
    for tmp in (stale, fresh):
        tmp.mkdir(parents=True)
        (tmp / "model.safetensors").write_bytes(b"x" * 100)
    old = time.time() - 2 * cache.STALE_TMP_S
    os.utime(stale, (old, old))
    cache.save_cache(*tiny_hf, "tiny", SHA, "tiny.gguf")
    assert not stale.exists() and fresh.exists()  # a young one may belong to a write in progress


def test_a_full_disk_while_writing_the_cache_warns_and_goes_on(tiny_hf, monkeypatch):
    import errno

    from saelib.model import cache

    def full(model, folder):
        folder.mkdir(parents=True)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "_save_dequantized", full)
    with pytest.warns(UserWarning, match="could not write the model cache .*No space left"):
        assert cache.save_cache(*tiny_hf, "tiny", SHA, "tiny.gguf") is None
    assert not list(cache.cache_dir("tiny", SHA).parent.iterdir())  # no folder, no temporary folder


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="ulimit -v is a Linux check here")
def test_a_model_loads_under_a_virtual_memory_limit(tiny_neox_dir):
    """pyarrow's own allocator (imported through TransformerLens) reserves about 1 GB of address space; importing
    saelib selects the system allocator, so a model loads under a limit that fits its real needs."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    code = f"import saelib.model.loader as L; L.load_model({str(tiny_neox_dir)!r}); print('loaded')"
    run = subprocess.run(
        ["bash", "-c", f"ulimit -v 2000000; exec {sys.executable!r} -c {code!r}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "loaded" in run.stdout, run.stderr[-2000:]
