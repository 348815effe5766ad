"""The notebooks' analysis code with the model on a device: the functions that run the model take and
return CPU tensors, so the SAEs, masks and baselines beside them stay on the CPU. Each test runs the model on
``device`` (conftest: the CPU, the simulated accelerator, a CUDA device where there is one) and compares with the
CPU model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saelib.baselines.decompositions import sae_decomposition
from saelib.dictionaries.sae import SAEConfig, TiedSAE
from saelib.experiments import erasure as E
from saelib.experiments import patching as P
from saelib.experiments import steering as S
from saelib.interp import case_studies as C
from saelib.model import behaviour as B
from saelib.model.forward import logits_from, run_blocks
from saelib.model.hooks import resid_post
from saelib.model.lens import logit_lens
from saelib.model.loader import load_model, model_name
from saelib.text.tasks import make_ioi_prompts

CLOSE = {"atol": 1e-3, "rtol": 1e-3}  # a GPU's float32 kernels differ in rounding, nothing more


@pytest.fixture()
def on_device(tiny_model, tiny_neox_dir):
    def make(device: str):
        return tiny_model if device == "cpu" else load_model(str(tiny_neox_dir), device=device)

    return make


def on_cpu(*tensors: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" for t in tensors)


def sae_at(model, layer: int, seed: int = 0) -> TiedSAE:
    d = model.cfg.d_model
    sae = TiedSAE(SAEConfig("tied", d, 2 * d, (1e-3,), model_name(model), resid_post(layer), 1.0), seed=seed)
    with torch.no_grad():
        sae.encoder_bias.fill_(0.05)  # most features fire somewhere
    return sae


def test_model_behaviour_comes_back_to_the_cpu(tiny_model, on_device, device):
    model, tokens = on_device(device), torch.randint(5, 1000, (5, 12), generator=torch.Generator().manual_seed(0))
    losses = B.context_losses(model, tokens, batch_size=2)
    logits = B.last_token_logits(model, ["The cat sat", "Once upon a time there"])
    norms = B.residual_norms(model, tokens, batch_size=2, special_token=int(tokens[0, 3]))
    assert on_cpu(losses, logits)
    torch.testing.assert_close(losses, B.context_losses(tiny_model, tokens, batch_size=2), **CLOSE)
    torch.testing.assert_close(
        logits, B.last_token_logits(tiny_model, ["The cat sat", "Once upon a time there"]), **CLOSE
    )
    reference = B.residual_norms(tiny_model, tokens, batch_size=2, special_token=int(tokens[0, 3]))
    for key in ("mean", "special_mean"):
        torch.testing.assert_close(torch.as_tensor(norms[key]), torch.as_tensor(reference[key]), **CLOSE)


def test_partial_forwards_return_on_the_inputs_device(tiny_model, on_device, device):
    model, tokens = on_device(device), torch.randint(5, 1000, (3, 10), generator=torch.Generator().manual_seed(1))
    res = C.residuals_at(model, tokens, [0, 1])
    assert on_cpu(*res.values())
    x = res[0].clone().requires_grad_(True)
    h, logits = run_blocks(model, x, 0, 1), logits_from(model, x, 0)
    last = logits_from(model, x, 0, positions=torch.tensor([9, 4, 0]))
    assert on_cpu(h, logits, last) and last.shape == (3, logits.shape[-1])
    torch.testing.assert_close(h, res[1], **CLOSE)
    torch.testing.assert_close(logits, tiny_model(tokens), **CLOSE)
    torch.testing.assert_close(last, logits[torch.arange(3), torch.tensor([9, 4, 0])], **CLOSE)
    last.sum().backward()  # gradients come back to the CPU input through the device copy
    assert x.grad is not None and on_cpu(x.grad) and x.grad.abs().sum() > 0
    effects = logit_lens(model, "blocks.1.hook_resid_post")(torch.randn(2, model.cfg.d_model))
    assert on_cpu(effects) and effects.shape == (2, logits.shape[-1])


def test_patching_with_cpu_decompositions(tiny_model, default_tokenizer, on_device, device):
    model = on_device(device)
    pairs = P.ioi_pairs(default_tokenizer, make_ioi_prompts(default_tokenizer, 4, seed=3))
    resid, logits = P.residuals(model, pairs.clean, pairs.lengths, [0, 1])
    assert on_cpu(logits, *resid.values())
    case = P.prepare_case(model, pairs, 0, batch_size=3)
    deltas = P.feature_deltas(case, sae_decomposition(sae_at(model, 0)))
    grad = P.kl_gradient(case)
    curve = P.topk_curve(case, deltas, P.attribution(deltas, grad), [0, 4, deltas.n_features])
    reference = P.prepare_case(tiny_model, pairs, 0, batch_size=3)
    assert on_cpu(case.x_clean, case.logits_cf, grad)
    torch.testing.assert_close(case.logits_cf, reference.logits_cf, **CLOSE)
    assert curve.kl.iloc[0] == pytest.approx(
        float(P.kl_from(reference.logits_cf, reference.logits_clean).mean()), abs=1e-3
    )
    cf, logits_cf = P.residuals(model, pairs.counterfactual, pairs.lengths, [0])
    scan = P.position_scan(model, pairs, {0: resid[0]}, cf, logits_cf)
    assert scan.kl_clean.iloc[0] == pytest.approx(curve.kl.iloc[0], abs=1e-3)


def test_case_studies_and_steering_with_a_cpu_sae(tiny_model, on_device, device):
    model, tokens = on_device(device), torch.randint(5, 1000, (4, 12), generator=torch.Generator().manual_seed(2))
    saes = {0: sae_at(model, 0), 1: sae_at(model, 1, seed=1)}
    with torch.no_grad():
        codes = saes[0].encode(C.residuals_at(tiny_model, tokens, [0])[0])
    f = int((codes[:, :-1] > 0).float().mean((0, 1)).argmax())
    keep = torch.ones(tokens.shape, dtype=torch.bool)
    got = C.next_token_ablation(model, saes[0], "blocks.0.hook_resid_post", tokens, f, keep, batch_size=2)
    ref = C.next_token_ablation(tiny_model, saes[0], "blocks.0.hook_resid_post", tokens, f, keep, batch_size=2)
    torch.testing.assert_close(torch.as_tensor(got.next_token), torch.as_tensor(ref.next_token), **CLOSE)
    with torch.no_grad():
        t = int((saes[1].encode(C.residuals_at(tiny_model, tokens, [1])[1]) > 0).float().mean((0, 1)).argmax())
    edges = C.upstream_effects(model, saes, tokens, (1, t), 0, n_candidates=3)
    assert len(edges) == 3 and edges.effect.notna().all()
    hook = S.clamp_hook(saes[1], f, 5.0)
    texts = S.generate_texts(model, ["The"], 2, 3, fwd_hooks=[("blocks.1.hook_resid_post", hook)], seed=0)
    assert len(texts) == 2


def test_erasure_with_a_cpu_eraser(tiny_model, default_tokenizer, on_device, device):
    model, hook = on_device(device), "blocks.0.hook_resid_post"
    names = {"male": ["John", "James", "David"], "female": ["Mary", "Linda", "Susan"]}
    fit = E.class_prompts(default_tokenizer, names, names, n_shots=1)
    acts, labels, _ = E.harvest_fit_activations(model, fit, [hook], batch_size=3)
    eraser = E.fit_mean_difference(acts[hook], labels, hook)  # fitted on the CPU, applied where the model is
    resid = E.clean_residuals(model, fit.tokens, [hook], batch_size=3)[hook]
    assert on_cpu(acts[hook], resid)
    got = E.task_scores(model, fit, eraser, batch_size=3, resid=resid)
    ref = E.task_scores(tiny_model, fit, eraser, batch_size=3)
    np.testing.assert_allclose(got["p_correct"], ref["p_correct"], atol=1e-3)
    tokens = fit.tokens[:2, :8]
    clean = E.clean_log_probs(model, tokens)
    assert on_cpu(clean)
    d = E.disruption(model, tokens, eraser, clean, separator_id=-1, batch_size=2, resid=resid[:2, :8])
    d_ref = E.disruption(tiny_model, tokens, eraser, E.clean_log_probs(tiny_model, tokens), separator_id=-1)
    assert d["kl"] == pytest.approx(d_ref["kl"], rel=1e-2, abs=1e-5)
