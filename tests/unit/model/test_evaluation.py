import numpy as np
import torch
import torch.nn.functional as F

from saelib.model.behaviour import (
    context_losses,
    last_token_logits,
    logit_difference,
    residual_norms,
    two_way_probability,
)


def test_context_losses_match_manual_cross_entropy(tiny_model):
    tokens = torch.randint(5, 500, (3, 10), generator=torch.Generator().manual_seed(0))
    logits = tiny_model(tokens)
    manual = torch.stack([F.cross_entropy(logits[i, :-1], tokens[i, 1:]) for i in range(3)])
    torch.testing.assert_close(context_losses(tiny_model, tokens, batch_size=2), manual, rtol=1e-5, atol=1e-5)


def test_last_token_logits_ignore_right_padding(tiny_model):
    texts = ["When Mary and John went to the store, John gave a drink to", "Hello there"]
    batched = last_token_logits(tiny_model, texts, batch_size=2)
    for i, t in enumerate(texts):
        alone = last_token_logits(tiny_model, [t])[0]
        torch.testing.assert_close(batched[i], alone, rtol=1e-4, atol=1e-4)


def test_logit_difference_and_two_way_probability():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 3.0]])
    a, b = torch.tensor([1, 0]), torch.tensor([2, 2])
    assert logit_difference(logits, a, b).tolist() == [1.0, 0.0]
    torch.testing.assert_close(two_way_probability(logits, a, b), torch.tensor([1 / (1 + np.e**-1), 0.5]))


def test_residual_norms_keep_special_tokens_apart(tiny_model):
    tokens = torch.randint(5, 500, (4, 12), generator=torch.Generator().manual_seed(1))
    tokens[:, 6] = 3
    out = residual_norms(tiny_model, tokens, batch_size=2, special_token=3)
    assert out["mean"].shape == (3,) and out["layer"].tolist() == [-1, 0, 1]
    _, cache = tiny_model.run_with_cache(tokens, names_filter=["blocks.1.hook_resid_post"])
    norms = cache["blocks.1.hook_resid_post"].norm(dim=-1)
    assert np.isclose(out["special_mean"][-1], norms[:, 6].mean().item(), rtol=1e-5)
    ordinary = torch.cat([norms[:, 1:6], norms[:, 7:]], dim=1).mean(1).mean()
    assert np.isclose(out["mean"][-1], ordinary.item(), rtol=1e-5)
