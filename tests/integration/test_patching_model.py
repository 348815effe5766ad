"""Feature patching on the real default model: forward from a layer equals the full forward on IOI prompts, and
patching every feature (with the error node) reproduces the counterfactual run, patching none the clean one."""

import pytest
import torch

from saelib.baselines.decompositions import from_baseline, sae_decomposition
from saelib.baselines.directions import fit_pca, neuron_basis
from saelib.dictionaries.sae import SAEConfig, TiedSAE
from saelib.dictionaries.sae.base import SAEMismatchError
from saelib.experiments import patching as P
from saelib.model.loader import model_name
from saelib.text.tasks import make_ioi_prompts

LAYERS = (14, 26)


@pytest.fixture(scope="module")
def pairs(default_model):
    return P.ioi_pairs(default_model.tokenizer, make_ioi_prompts(default_model.tokenizer, 8, seed=1))


def test_forward_from_layer_matches_full_forward(default_model, pairs):
    acts, full = P.residuals(default_model, pairs.clean, pairs.lengths, LAYERS)
    assert len(set(pairs.lengths.tolist())) > 1
    for layer in LAYERS:
        from_layer = P.final_logits_from(default_model, acts[layer], layer, pairs.lengths, batch_size=3)
        torch.testing.assert_close(from_layer, full, atol=1e-3, rtol=1e-4)


def test_every_method_reproduces_clean_and_counterfactual(default_model, pairs):
    layer = LAYERS[1]
    case = P.prepare_case(default_model, pairs, layer)
    kl_clean = float(P.kl_from(case.logits_cf, case.logits_clean).mean())
    assert kl_clean > 1.0  # IOI: the counterfactual run names another person
    name, hook = model_name(default_model), case.hook
    x = torch.cat([case.x_clean[case.pairs.mask], case.x_cf[case.pairs.mask]])
    gen = torch.Generator().manual_seed(0)  # 8 prompts give fewer rows than dimensions: pad to a full-rank basis
    pca = fit_pca(torch.cat([x, x.mean(0) + x.std(0) * torch.randn(2 * x.shape[1], x.shape[1], generator=gen)]))
    sae = TiedSAE(
        SAEConfig(
            "tied",
            x.shape[1],
            2 * x.shape[1],
            (1e-3,),
            model=name,
            hook=hook,
            input_scale=float(x.shape[1] ** 0.5 / x.norm(dim=-1).mean()),
        )
    )
    methods = [
        sae_decomposition(sae),
        from_baseline(pca, hook, name, signed=False),
        from_baseline(pca, hook, name, signed=True),
        from_baseline(neuron_basis(x.shape[1]), hook, name, False),
    ]
    for d in methods:
        fd = P.feature_deltas(case, d)
        assert P.evaluate(case, fd, torch.zeros(fd.n_features))["kl"] == pytest.approx(kl_clean, rel=1e-5)
        assert abs(P.evaluate(case, fd, torch.ones(fd.n_features), error=1.0)["kl"]) < 1e-3, d.name
    with pytest.raises(SAEMismatchError, match="blocks.14.hook_resid_post"):
        P.feature_deltas(
            case,
            sae_decomposition(
                TiedSAE(SAEConfig("tied", x.shape[1], 8, (1e-3,), model=name, hook="blocks.14.hook_resid_post"))
            ),
        )
