"""Counterfactual feature patching on the tiny GPT-NeoX fixture: forward from a layer, exact reconstruction for every
decomposition, attribution, greedy elimination, and bad inputs."""

import numpy as np
import pytest
import torch

from saelib.baselines.decompositions import from_baseline, sae_decomposition
from saelib.baselines.directions import fit_ica, fit_pca, neuron_basis
from saelib.dictionaries.sae import SAEConfig, TiedSAE, UntiedSAE
from saelib.dictionaries.sae.base import SAEMismatchError
from saelib.experiments import patching as P
from saelib.model.loader import model_name
from saelib.text.tasks import make_ioi_prompts

LAYER = 0


@pytest.fixture(scope="module")
def pairs(default_tokenizer):
    prompts = make_ioi_prompts(default_tokenizer, 6, seed=3)
    out = P.ioi_pairs(default_tokenizer, prompts)
    assert len(set(out.lengths.tolist())) > 1  # templates of different lengths: padding is exercised
    return out


@pytest.fixture(scope="module")
def case(tiny_model, pairs):
    return P.prepare_case(tiny_model, pairs, LAYER, batch_size=4)


def _sae(d: int, model: str, hook: str, architecture: str = "tied") -> TiedSAE:
    cfg = SAEConfig(architecture, d, 2 * d, (1e-3,), model=model, hook=hook, input_scale=0.5)
    sae = (TiedSAE if architecture == "tied" else UntiedSAE)(cfg)
    with torch.no_grad():  # make some features fire on both runs and some on neither
        for name, p in sae.named_parameters():
            if "bias" in name:
                p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    return sae


@pytest.fixture(scope="module")
def decompositions(tiny_model, case):
    name, hook = model_name(tiny_model), case.hook
    x = torch.cat([case.x_clean[case.pairs.mask], case.x_cf[case.pairs.mask]])
    pca = fit_pca(x)
    return [
        sae_decomposition(_sae(x.shape[1], name, hook)),
        sae_decomposition(_sae(x.shape[1], name, hook, "untied"), "untied SAE"),
        from_baseline(pca, hook, name, signed=False, name="PCA rotation"),
        from_baseline(pca, hook, name, signed=True, name="PCA ±"),
        from_baseline(fit_ica(x, orient="both", max_iter=200), hook, name, signed=False, name="ICA"),
        from_baseline(neuron_basis(x.shape[1]), hook, name, signed=False, name="neurons"),
    ]


def test_forward_from_layer_matches_full_forward(tiny_model, pairs):
    for layer in (0, 1):
        acts, full = P.residuals(tiny_model, pairs.clean, pairs.lengths, [layer], batch_size=4)
        from_layer = P.final_logits_from(tiny_model, acts[layer], layer, pairs.lengths, batch_size=3)
        torch.testing.assert_close(from_layer, full, atol=1e-4, rtol=1e-4)


def test_padding_does_not_change_a_prompts_output(tiny_model, pairs):
    acts, full = P.residuals(tiny_model, pairs.clean, pairs.lengths, [LAYER])
    i = int(torch.argmin(pairs.lengths))  # the shortest prompt, alone and unpadded
    alone = pairs.clean[i : i + 1, : int(pairs.lengths[i])]
    _, single = P.residuals(tiny_model, alone, pairs.lengths[i : i + 1], [LAYER])
    torch.testing.assert_close(single[0], full[i], atol=1e-4, rtol=1e-4)


def test_none_patched_is_clean_and_all_patched_is_counterfactual(case, decompositions):
    kl_clean = P.kl_from(case.logits_cf, case.logits_clean).mean()
    assert kl_clean > 1e-5  # the two runs differ (a random tiny model is nearly uniform), so the checks can fail
    for d in decompositions:
        fd = P.feature_deltas(case, d)
        none = P.evaluate(case, fd, torch.zeros(fd.n_features))
        assert none["edit"] == 0.0
        assert none["kl"] == pytest.approx(float(kl_clean), rel=1e-5), d.name
        every = P.evaluate(case, fd, torch.ones(fd.n_features), error=1.0)
        assert abs(every["kl"]) < 1e-2 * float(kl_clean), d.name
        real = case.pairs.mask  # padding is never patched (and never seen by a real token)
        torch.testing.assert_close(
            P.patched(case, fd, torch.ones(fd.n_features), 1.0)[real], case.x_cf[real], atol=1e-3, rtol=1e-4
        )
        if not d.name.startswith(("SAE", "untied")):  # rotations: the error term is round-off
            assert abs(P.evaluate(case, fd, torch.ones(fd.n_features))["kl"]) < 1e-2 * float(kl_clean), d.name


def test_sae_error_term_is_kept_clean_by_default(case, decompositions):
    fd = P.feature_deltas(case, decompositions[0])
    assert fd.delta_err.abs().max() > 1e-3  # a random SAE reconstructs badly: the error node matters
    x = P.patched(case, fd, torch.ones(fd.n_features))
    sae = decompositions[0]
    real = case.pairs.mask
    err = lambda v: (v - sae.decode(sae.encode(v)))[real]  # noqa: E731
    torch.testing.assert_close(
        x[real] - sae.decode(sae.encode(case.x_cf))[real], err(case.x_clean), atol=1e-4, rtol=1e-4
    )


def test_attribution_sums_to_the_linear_change(case, decompositions):
    grad = P.kl_gradient(case)
    x_change = (case.x_cf - case.x_clean) * case.pairs.mask[..., None]
    for d in decompositions[2:]:  # rotations: features add up to the whole change
        fd = P.feature_deltas(case, d)
        attr = P.attribution(fd, grad)
        assert float(attr.sum()) == pytest.approx(float((grad * x_change).sum()), rel=1e-3, abs=1e-5), d.name


def test_kl_gradient_matches_finite_difference(case):
    grad = P.kl_gradient(case)
    direction = (case.x_cf - case.x_clean) * case.pairs.mask[..., None]
    eps = 0.05  # float32 KL of a near-uniform tiny model: a smaller step drowns in round-off
    fd = (case.kl(case.x_clean + eps * direction).mean() - case.kl(case.x_clean - eps * direction).mean()) / (2 * eps)
    assert float((grad * direction).sum()) == pytest.approx(float(fd), rel=0.05)


def test_topk_curve_and_greedy(case, decompositions):
    fd = P.feature_deltas(case, decompositions[2])
    attr = P.attribution(fd, P.kl_gradient(case))
    ks = P.log_spaced_ks(fd.n_features, 4)
    assert ks[0] == 0 and ks[-1] == fd.n_features and ks == sorted(set(ks))
    curve = P.topk_curve(case, fd, attr, ks)
    assert list(curve.n_features) == ks
    assert curve.kl.iloc[-1] < 1e-2 * curve.kl.iloc[0]
    small = case.subset([0, 1])
    sfd = P.feature_deltas(small, decompositions[0])
    greedy = P.greedy_elimination(small, sfd, [1e-4, 1e-2, 1e3], seed=0)
    assert greedy.n_features.iloc[0] == int(sfd.active.sum())
    assert list(greedy.n_features) == sorted(greedy.n_features, reverse=True)
    assert greedy.n_features.iloc[-1] == 0  # a threshold above any KL rise removes everything
    assert greedy.kl.iloc[-1] == pytest.approx(float(small.kl(small.x_clean).mean()), rel=1e-5)


def _greedy_reference(case, fd, thresholds, seed):
    """The paper's loop as written: every visit reruns all prompts."""
    mask = fd.active.float().clone()
    gen = torch.Generator().manual_seed(seed)
    current = P.evaluate(case, fd, mask)["kl"]
    kept = []
    for threshold in sorted(thresholds):
        on = torch.nonzero(mask).flatten()
        for f in on[torch.randperm(len(on), generator=gen)].tolist():
            mask[f] = 0.0
            kl = P.evaluate(case, fd, mask)["kl"]
            if kl - current < threshold:
                current = kl
            else:
                mask[f] = 1.0
        kept.append(int(mask.sum()))
    return mask, kept


def test_greedy_reruns_only_touched_prompts_with_the_same_result(case, decompositions):
    fd = P.feature_deltas(case, decompositions[0])
    assert bool(((fd.delta_codes != 0).any(1) == 0).any()), "the case must have features absent from some prompts"
    kl0 = float(case.kl(case.x_clean).mean())  # the tiny model's KLs are small: thresholds on its scale
    thresholds = [kl0 * t for t in (1e-3, 1e-2, 3e-2, 1e-1)]
    want_mask, want_kept = _greedy_reference(case, fd, thresholds, seed=3)
    assert 0 < want_kept[0] < int(fd.active.sum()), "thresholds must make the first pass keep some features"
    greedy = P.greedy_elimination(case, fd, thresholds, seed=3)
    assert list(greedy.n_features.iloc[1:]) == want_kept
    assert torch.equal(greedy.attrs["mask"], want_mask)
    assert greedy.kl.iloc[-1] == pytest.approx(P.evaluate(case, fd, want_mask)["kl"], rel=1e-5)


def test_rejects_multi_token_name(default_tokenizer):
    with pytest.raises(ValueError, match="Zbigniewsky"):
        make_ioi_prompts(default_tokenizer, 4, names=["Mary", "John", "Zbigniewsky"])


def test_rejects_clean_and_counterfactual_of_different_lengths(default_tokenizer):
    with pytest.raises(P.PromptLengthError, match="differ in token length"):
        P.tokenize_pairs(
            default_tokenizer,
            ["When Mary and John went to the store, John gave a drink to"],
            ["When Maximiliano and John went to the store, John gave a drink to"],
        )


def test_rejects_dictionary_from_another_layer_or_model(tiny_model, case):
    d = case.x_clean.shape[-1]
    name = model_name(tiny_model)
    with pytest.raises(SAEMismatchError, match="blocks.1.hook_resid_post"):
        P.feature_deltas(case, sae_decomposition(_sae(d, name, "blocks.1.hook_resid_post")))
    with pytest.raises(SAEMismatchError, match="other-model"):
        P.feature_deltas(case, sae_decomposition(_sae(d, "other-model", case.hook)))
    with pytest.raises(SAEMismatchError, match="width"):
        P.feature_deltas(case, sae_decomposition(_sae(d + 1, name, case.hook)))
    with pytest.raises(SAEMismatchError, match="hook"):
        P.feature_deltas(case, from_baseline(neuron_basis(d), "blocks.1.hook_resid_post", name, signed=True))


def test_ioi_roles(default_tokenizer, pairs):
    prompts = make_ioi_prompts(default_tokenizer, 6, seed=3)
    roles = P.ioi_roles(default_tokenizer, prompts, pairs)
    for i in range(len(prompts)):
        r = roles[i, : int(pairs.lengths[i])].tolist()
        assert r.count(0) == 1 and r.count(1) == 1 and r.count(2) == 1 and r[-1] == 3
    assert (roles[~pairs.mask] == -1).all()
    assert (roles[:, 0] == -1).all()  # position 0 left out, as in training


def test_shared_k_grid_and_prompt_halves():
    grid = P.log_spaced_ks(1152, 8)
    assert P.shared_ks(grid, 1152) == grid
    small = P.shared_ks(grid, 576)
    assert small[-1] == 576 and set(small[:-1]) <= set(grid) and all(k < 576 for k in small[:-1])
    rank, held = P.halves(7)
    assert rank == [0, 2, 4, 6] and held == [1, 3, 5] and not set(rank) & set(held)


def test_shipped_greedy_replays_and_refuses_another_case(case, decompositions, tmp_path):
    from saelib.experiments.greedy import GreedyRecordError, greedy_key, load_greedy, replay_greedy, write_greedy

    kl0 = float(case.kl(case.x_clean).mean())
    thresholds = [kl0 * t for t in (1e-3, 1e-2, 1e-1)]
    fd = P.feature_deltas(case, decompositions[0])
    searched = P.greedy_elimination(case, fd, thresholds, seed=3)
    key = greedy_key(case, fd, "model-sha", thresholds, seed=3)
    path = tmp_path / "greedy.json"
    with pytest.raises(GreedyRecordError, match="no shipped greedy search"):
        load_greedy(key, path)
    write_greedy(path, key, searched, seconds=1.0)
    replayed = replay_greedy(case, fd, load_greedy(key, path))
    assert list(replayed.n_features) == list(searched.n_features)
    torch.testing.assert_close(torch.tensor(replayed.kl.values), torch.tensor(searched.kl.values))
    assert torch.equal(replayed.attrs["mask"], searched.attrs["mask"])
    # another dictionary, other prompts or another grid: refused, naming the field
    other_fd = P.feature_deltas(case, decompositions[1])
    with pytest.raises(GreedyRecordError, match="decoder_sha256"):
        load_greedy(greedy_key(case, other_fd, "model-sha", thresholds, seed=3), path)
    with pytest.raises(GreedyRecordError, match="prompt_tokens_sha256"):
        sub = case.subset([0, 1, 2])
        load_greedy(greedy_key(sub, P.feature_deltas(sub, decompositions[0]), "model-sha", thresholds, seed=3), path)
    with pytest.raises(GreedyRecordError, match="thresholds.*release_greedy"):
        load_greedy(greedy_key(case, fd, "model-sha", thresholds[:2], seed=3), path)


def test_halves_by_template_keep_each_template_on_one_side():
    templates = [t for t in range(6) for _ in range(3)] + [7, 7]
    rank, held = P.halves_by_template(templates, seed=1)
    assert sorted(rank + held) == list(range(len(templates)))
    assert not {templates[i] for i in rank} & {templates[i] for i in held}
    assert P.halves_by_template(templates, seed=1) == (rank, held)  # seeded
    with pytest.raises(ValueError, match="at least 4"):
        P.halves_by_template([0, 0, 1, 2])


def test_curve_area_is_the_mean_kl_over_the_grid(case, decompositions):
    fd = P.feature_deltas(case, decompositions[2])
    attr = P.attribution(fd, P.kl_gradient(case))
    ks = [1, 4, fd.n_features]
    area = P.curve_area(case, fd, attr, ks)
    expected = np.mean([P.topk_kl(case, fd, attr, k).numpy() for k in ks], axis=0)
    np.testing.assert_allclose(area, expected, rtol=1e-6)
    assert area.shape == (len(case.pairs),)
    with pytest.raises(ValueError, match="must lie in"):
        P.curve_area(case, fd, attr, [0, 1])
