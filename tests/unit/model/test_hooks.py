"""Hook names (saelib.model.hooks) and the one residual collector (saelib.model.forward.collect_residuals, over
collect_activations) behind erasure.clean_residuals, patching.residuals and case_studies.residuals_at."""

import pytest
import torch

from saelib.experiments import erasure as E
from saelib.experiments import patching as P
from saelib.interp import case_studies as C
from saelib.model.forward import collect_activations, collect_residuals
from saelib.model.hooks import is_resid_post, layer_of, mlp_post, resid_post, stop_layer


def test_names_and_layers():
    assert resid_post(5) == "blocks.5.hook_resid_post" and mlp_post(14) == "blocks.14.mlp.hook_post"
    assert layer_of(resid_post(5)) == 5 and layer_of(mlp_post(14)) == 14 and layer_of("blocks.29.attn.hook_z") == 29
    assert is_resid_post(resid_post(3)) and not is_resid_post(mlp_post(3)) and not is_resid_post("hook_resid_post")
    for hook in ("hook_embed", "ln_final.hook_normalized", "blocks.x.hook_resid_post"):
        with pytest.raises(ValueError, match="belongs to no block"):
            layer_of(hook)
    assert stop_layer([resid_post(1), mlp_post(4)]) == 5 and stop_layer(["hook_embed", resid_post(0)]) == 1
    assert stop_layer([resid_post(1), "ln_final.hook_normalized"]) is None


def test_the_collectors_share_one_implementation(tiny_model):
    torch.manual_seed(0)
    tokens = torch.randint(5, 1000, (5, 7))
    lengths = torch.tensor([7, 3, 5, 7, 2])
    hooks = [resid_post(0), resid_post(1)]
    acts, logits = collect_activations(tiny_model, tokens, hooks, batch_size=2)
    assert logits is None and all(acts[h].dtype == torch.float32 and acts[h].shape == (5, 7, 64) for h in hooks)
    clean = E.clean_residuals(tiny_model, tokens, hooks, batch_size=2)
    assert all(torch.equal(clean[h], acts[h]) for h in hooks)

    whole = collect_activations(tiny_model, tokens, hooks)[0]
    by_layer, none = collect_residuals(tiny_model, tokens, [1, 0])
    assert none is None and list(by_layer) == [1, 0]
    assert all(torch.equal(by_layer[layer], whole[resid_post(layer)]) for layer in (0, 1))
    at = C.residuals_at(tiny_model, tokens, [0, 1])
    assert all(torch.equal(at[layer], whole[resid_post(layer)]) for layer in (0, 1))

    full, full_logits = collect_activations(tiny_model, tokens, hooks, 2, lengths=lengths, dtype=None)
    res, res_logits = P.residuals(tiny_model, tokens, lengths, [1, 0], batch_size=2)
    assert list(res) == [1, 0] and full_logits.shape == (5, tiny_model.cfg.d_vocab)
    assert torch.equal(res_logits, full_logits) and all(torch.equal(res[la], full[resid_post(la)]) for la in (0, 1))
    out = tiny_model(tokens)
    torch.testing.assert_close(full_logits, out[torch.arange(5), lengths - 1], atol=1e-5, rtol=1e-5)
