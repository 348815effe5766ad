"""The general loading path (any HF causal LM / local directory) on a tiny random GPT-NeoX, offline."""

import pytest
import torch

from saelib.model.loader import (
    ModelNotAvailableError,
    UnknownHookError,
    hook_layer,
    hook_width,
    load_model,
    model_info,
    stop_layer,
    validate_hooks,
)


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
    assert hook_layer("blocks.5.mlp.hook_post") == 5 and hook_layer("hook_embed") == -1
    assert stop_layer(["blocks.1.hook_resid_post", "blocks.4.hook_resid_post"]) == 5
    assert stop_layer(["ln_final.hook_normalized"]) is None
