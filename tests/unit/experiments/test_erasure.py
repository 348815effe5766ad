"""Concept erasure on synthetic data with a planted linear concept, and the bad inputs of notebook 04's issue."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saelib.dictionaries.sae import SAEConfig
from saelib.dictionaries.sae.tied import TiedSAE
from saelib.experiments import erasure as E

HOOK = "blocks.3.hook_resid_post"
D = 32


def planted(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x [n, D] = anisotropic Gaussian noise + 3 * label * v (v a fixed unit direction), labels balanced 0/1."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(D, D, generator=torch.Generator().manual_seed(123)) / D**0.5  # fixed noise covariance
    v = torch.nn.functional.normalize(torch.randn(D, generator=torch.Generator().manual_seed(7)), dim=0)
    labels = torch.arange(n) % 2
    x = torch.randn(n, D, generator=g) @ mix + 3.0 * labels[:, None].float() * v + 1.0
    return x, labels, v


def toy_sae(v: torch.Tensor, hook: str = HOOK, n_features: int = 16) -> TiedSAE:
    """A tied SAE whose feature 0 is the planted direction and the rest are random directions."""
    sae = TiedSAE(SAEConfig("tied", D, n_features, (1e-3,), model="toy", hook=hook), seed=0)
    with torch.no_grad():
        sae.weight[0, 0] = v
    return sae


@pytest.fixture(scope="module")
def data():
    x, y, v = planted(2000, seed=0)
    x_test, y_test, _ = planted(1000, seed=1)
    return x, y, x_test, y_test, v


def test_probe_finds_the_planted_concept(data):
    x, y, x_test, y_test, _ = data
    assert E.probe_accuracy(x, y, x_test, y_test) > 0.95


@pytest.mark.parametrize("fit", [E.fit_leace, E.fit_mean_difference])
def test_leace_and_mean_difference_remove_the_concept(data, fit):
    x, y, x_test, y_test, _ = data
    eraser = fit(x, y, HOOK)
    acc = E.probe_accuracy(eraser.transform(x), y, eraser.transform(x_test), y_test)
    assert 0.4 < acc < 0.58  # chance is 0.5


def test_sae_feature_aligned_with_the_concept_removes_it_and_random_control_does_not(data):
    x, y, x_test, y_test, v = data
    erasers, ranking = E.fit_erasers(x, y, HOOK, toy_sae(v), ks=(1,), min_frequency=0.01, seed=0)
    assert ranking.feature[0] == 0 and ranking.abs_cosine[0] > 0.99
    sae_e, rnd = erasers["SAE top-1"], erasers["random top-1"]
    assert sae_e.features == (0,) and rnd.features != (0,)
    acc_sae = E.probe_accuracy(sae_e.transform(x), y, sae_e.transform(x_test), y_test)
    acc_rnd = E.probe_accuracy(rnd.transform(x), y, rnd.transform(x_test), y_test)
    assert acc_sae < 0.58
    assert acc_rnd > 0.9


def test_random_control_is_reproducible_and_excludes_top_features(data):
    x, y, _, _, v = data
    sae = toy_sae(v)
    ranking = E.rank_features(sae, x, y)
    a = E.fit_random_features(sae, ranking, HOOK, k=3, seed=5)
    b = E.fit_random_features(sae, ranking, HOOK, k=3, seed=5)
    assert a.features == b.features and len(set(a.features)) == 3
    assert not set(a.features) & set(int(f) for f in ranking.feature[:3])


def test_projection_is_orthogonal_to_its_directions():
    dirs = torch.randn(3, D)
    eraser = E.ProjectionEraser("p", HOOK, dirs)
    out = eraser.transform(torch.randn(50, 7, D))
    assert out.shape == (50, 7, D)
    assert (out @ dirs.T).abs().max() < 1e-4


def test_composed_eraser_keeps_leace_guarantee_and_applies_parts_in_order(data):
    x, y, _, _, _ = data
    leace, extra = E.fit_leace(x, y, HOOK), E.ProjectionEraser("top PC", HOOK, torch.randn(1, D))
    both = E.ComposedEraser("LEACE + top PC", HOOK, parts=(leace, extra))
    torch.testing.assert_close(both.transform(x), extra.transform(leace.transform(x)))
    out = both.transform(x)
    gap = out[y == 1].mean(0) - out[y == 0].mean(0)  # a linear map of equal class means leaves them equal
    assert gap.norm() < 1e-3 * (x[y == 1].mean(0) - x[y == 0].mean(0)).norm()
    with pytest.raises(E.EraserHookError, match="another hook"):
        E.ComposedEraser(
            "mixed", HOOK, parts=(leace, E.ProjectionEraser("p", "blocks.4.hook_resid_post", torch.randn(1, D)))
        )
    with pytest.raises(ValueError, match="at least one part"):
        E.ComposedEraser("empty", HOOK)


def test_frequency_filter_excludes_rare_features(data):
    x, y, _, _, v = data
    sae = toy_sae(v)
    with torch.no_grad():
        sae.encoder_bias[0, 0] = -1e6  # feature 0 never fires
    ranking = E.rank_features(sae, x, y, min_frequency=0.01)
    assert 0 not in set(ranking.feature) and (ranking.frequency > 0.01).all()


# ------------------------------------------------------------------------------------------- bad input


def test_eraser_rejects_another_hook(data):
    x, y, _, _, _ = data
    for eraser in (E.fit_leace(x, y, HOOK), E.fit_mean_difference(x, y, HOOK)):
        assert torch.equal(eraser.apply(x, HOOK), eraser.transform(x))
        with pytest.raises(E.EraserHookError, match="blocks.3.hook_resid_post.*blocks.5.hook_resid_post"):
            eraser.apply(x, "blocks.5.hook_resid_post")


def test_sae_from_another_hook_is_rejected(data):
    x, y, _, _, v = data
    with pytest.raises(E.EraserHookError, match="trained at"):
        E.fit_erasers(x, y, HOOK, toy_sae(v, hook="blocks.4.hook_resid_post"))


@pytest.mark.parametrize("fit", [E.fit_leace, E.fit_mean_difference])
@pytest.mark.parametrize("cls", [0, 1])
def test_labels_all_one_class_are_rejected(data, fit, cls):
    x = data[0]
    with pytest.raises(ValueError, match=f"all {len(x)} labels are class {cls}"):
        fit(x, torch.full((len(x),), cls), HOOK)


def test_all_one_class_rejected_by_fit_erasers(data):
    x, _, _, _, v = data
    with pytest.raises(ValueError, match="both classes"):
        E.fit_erasers(x, torch.zeros(len(x), dtype=torch.long), HOOK, toy_sae(v))


def test_bad_label_values_and_shapes_are_rejected(data):
    x, y, _, _, _ = data
    with pytest.raises(ValueError, match="class codes"):
        E.fit_mean_difference(x, y + 1, HOOK)
    with pytest.raises(ValueError, match="expected activations"):
        E.fit_leace(x, y[:-1], HOOK)


def test_too_few_single_token_names_states_the_counts(default_tokenizer):
    names = {"male": ["John", "James", "Bartholomew", "Xzavierio"], "female": ["Mary", "Anna", "Ottoline"]}
    with pytest.raises(
        ValueError,
        match=r"need 3 per gender.*'male': '2 single-token of 4'.*'female': "
        r"'2 single-token of 3'",
    ):
        E.split_single_token_names(default_tokenizer, names, n_per_gender=3, test_fraction=0.5)


def test_split_too_small_for_training_states_the_counts(default_tokenizer):
    names = {"male": ["John", "James", "David"], "female": ["Mary", "Linda", "Susan"]}
    with pytest.raises(ValueError, match=r"gives 2 train \(need >= 4\) and 1 test"):
        E.split_single_token_names(default_tokenizer, names, 3, test_fraction=0.34, min_train=4)


def test_split_is_balanced_and_disjoint(default_tokenizer):
    from saelib.text.names import gendered_names

    train, test = E.split_single_token_names(default_tokenizer, gendered_names(default_tokenizer), 20, 0.25)
    assert {g: len(v) for g, v in train.items()} == {"male": 15, "female": 15}
    assert {g: len(v) for g, v in test.items()} == {"male": 5, "female": 5}
    assert not set(train["male"] + train["female"]) & set(test["male"] + test["female"])


def test_best_aligned_control_finds_an_aligned_direction_and_is_named(data):
    x, y, x_test, y_test, v = data
    noise = torch.nn.functional.normalize(torch.randn(50, D, generator=torch.Generator().manual_seed(3)), dim=-1)
    planted_at_7 = torch.cat([noise[:7], v[None], noise[7:]])
    e = E.fit_best_aligned("random", planted_at_7, x, y, HOOK, k=1)
    assert e.method == "best random top-1" and e.features == (7,)
    assert E.probe_accuracy(e.transform(x), y, e.transform(x_test), y_test) < 0.6
    weak = E.fit_best_aligned("random", noise, x, y, HOOK, k=2)  # no aligned direction: the probe survives
    assert len(weak.features) == 2 and E.probe_accuracy(weak.transform(x), y, weak.transform(x_test), y_test) > 0.9
    with pytest.raises(ValueError, match="directions must be"):
        E.fit_best_aligned("PCA", noise[:, :5], x, y, HOOK)
    erasers, _ = E.fit_erasers(x, y, HOOK, toy_sae(v), ks=(1, 2), controls={"random": noise, "PCA": noise[:10]})
    assert {"best random top-1", "best random top-2", "best PCA top-1", "best PCA top-2"} <= set(erasers)


def test_probe_correct_is_per_row_and_averages_to_the_accuracy(data):
    x, y, x_test, y_test, _ = data
    correct = E.probe_correct(x, y, x_test, y_test)
    assert correct.shape == (len(y_test),) and correct.dtype == bool
    assert correct.mean() == E.probe_accuracy(x, y, x_test, y_test)


@pytest.mark.parametrize(
    "erase, kl, want",
    [
        ((0.2, 0.1, 0.3), (-0.5, -0.6, -0.4), "a dominates"),  # more erasure, less KL
        ((0.0, -0.1, 0.1), (-0.5, -0.6, -0.4), "a dominates"),  # tied erasure, less KL
        ((-0.2, -0.3, -0.1), (0.5, 0.4, 0.6), "b dominates"),
        ((0.2, 0.1, 0.3), (0.5, 0.4, 0.6), "trade-off"),
        ((0.0, -0.1, 0.1), (0.0, -0.1, 0.1), "undecided"),
    ],
)
def test_dominance_is_decided_by_intervals(erase, kl, want):
    from saelib.core.stats import Estimate

    def est(m, lo, hi):
        return Estimate(m, 0.05, 30, lo, hi)

    assert E.dominance(est(*erase), est(*kl), "a", "b") == want


def test_erasure_difference_is_clustered_by_name():
    after_a, after_b = np.array([0.5, 0.5, 0.6, 0.6]), np.array([0.9, 0.9, 0.8, 0.8])
    d = E.erasure_difference(after_a, after_b, ["Ann", "Ann", "Bob", "Bob"])
    assert d.n == 2 and d.mean == pytest.approx(0.3) and d.lo > 0  # a erases 0.3 more


# ------------------------------------------------------------------------------------ prompts and model


def test_prompt_edit_positions_start_at_the_query_name(default_tokenizer):
    tr = {"male": ["John", "James", "David", "Robert"], "female": ["Mary", "Linda", "Susan", "Karen"]}
    te = {"male": ["Thomas"], "female": ["Nancy"]}
    cls = E.class_prompts(default_tokenizer, te, tr, n_shots=2)
    for i in range(len(cls)):
        edited = default_tokenizer.decode(cls.tokens[i, cls.starts[i] : cls.lengths[i]])
        assert edited == f" {cls.names[i]} and I am a"
    assert cls.edit_mask().sum(1).tolist() == [5, 5]  # name, and, I, am, a
    assert (cls.edit_mask("all").sum(1) == cls.lengths - 1).all()  # every position but the first
    with pytest.raises(ValueError, match="scope must be one of"):
        cls.edit_mask("everywhere")
    three = E.class_prompts(default_tokenizer, te, tr, n_shots=2, prompts_per_name=3)
    assert len(three) == 6 and sorted(three.names) == ["Nancy"] * 3 + ["Thomas"] * 3
    assert len(set(three.texts)) > 2  # each draw has its own shots
    pro = E.pronoun_prompts(default_tokenizer, te, n_templates=2)
    assert len(pro) == 4 and set(pro.labels.tolist()) == {0, 1}
    for i in range(len(pro)):
        assert default_tokenizer.decode(pro.tokens[i, pro.starts[i]]) == f" {pro.names[i]}"
        assert pro.tokens[i, pro.lengths[i] :].eq(0).all()


def test_task_scores_and_disruption_on_tiny_model(tiny_model, default_tokenizer):
    tr = {"male": ["John", "James", "David", "Robert"], "female": ["Mary", "Linda", "Susan", "Karen"]}
    fit = E.class_prompts(default_tokenizer, tr, tr, n_shots=1)
    hooks = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    acts, labels, index = E.harvest_fit_activations(tiny_model, fit, hooks, batch_size=3)
    assert len(acts[hooks[0]]) == len(labels) == len(index) == int(fit.edit_mask().sum())
    eraser = E.fit_mean_difference(acts[hooks[0]], labels, hooks[0])
    base = E.task_scores(tiny_model, fit)
    edited = E.task_scores(tiny_model, fit, eraser, batch_size=3)
    assert base["p_correct"].shape == (8,) and (base["edit_norm"] == 0).all()
    assert ((edited["p_correct"] > 0) & (edited["p_correct"] < 1)).all() and (edited["edit_norm"] > 0).all()
    with pytest.raises(E.EraserHookError):
        E.task_scores(tiny_model, fit, eraser, hook=hooks[1])
    tokens = fit.tokens[:2, :10]
    clean = E.clean_log_probs(tiny_model, tokens)
    d = E.disruption(tiny_model, tokens, eraser, clean, separator_id=-1)
    assert d["kl"] >= 0 and d["edit_norm"] > 0 and 0 < d["edit_norm_relative"] <= 1
    assert d["contexts"] == 2 and d["kl_lo"] <= d["kl"] <= d["kl_hi"]  # interval over contexts around the mean
    assert d["ce_increase_lo"] <= d["ce_increase"] <= d["ce_increase_hi"]
    assert d["kl_per_context"].shape == (2,) and d["kl_per_context"].mean() == pytest.approx(d["kl"], rel=1e-5)
    everywhere = E.task_scores(tiny_model, fit, eraser, batch_size=3, scope="all")
    assert not np.allclose(everywhere["p_correct"], edited["p_correct"])
    with pytest.raises(E.EraserHookError):
        E.disruption(tiny_model, tokens, eraser, clean, separator_id=-1, hook=hooks[1])


def test_running_from_the_cached_residual_matches_the_hooked_forward(tiny_model, default_tokenizer):
    tr = {"male": ["John", "James", "David", "Robert"], "female": ["Mary", "Linda", "Susan", "Karen"]}
    fit = E.class_prompts(default_tokenizer, tr, tr, n_shots=1)
    hook = "blocks.0.hook_resid_post"
    acts, labels, _ = E.harvest_fit_activations(tiny_model, fit, [hook], batch_size=3)
    eraser = E.fit_mean_difference(acts[hook], labels, hook)
    resid = E.clean_residuals(tiny_model, fit.tokens, [hook], batch_size=3)[hook]
    assert resid.shape[:2] == fit.tokens.shape
    full, fast = (
        E.task_scores(tiny_model, fit, eraser, batch_size=3),
        E.task_scores(tiny_model, fit, eraser, batch_size=3, resid=resid),
    )
    np.testing.assert_allclose(fast["p_correct"], full["p_correct"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fast["edit_norm"], full["edit_norm"], rtol=1e-4)
    tokens = fit.tokens[:3, :10]
    clean = E.clean_log_probs(tiny_model, tokens)
    tok_resid = E.clean_residuals(tiny_model, tokens, [hook])[hook]
    d_full = E.disruption(tiny_model, tokens, eraser, clean, separator_id=-1, batch_size=2)
    d_fast = E.disruption(tiny_model, tokens, eraser, clean, separator_id=-1, batch_size=2, resid=tok_resid)
    for key in ("kl", "ce_increase", "edit_norm", "edit_norm_relative", "kl_lo", "kl_hi"):
        assert d_fast[key] == pytest.approx(d_full[key], rel=1e-4, abs=1e-7), key


def test_cached_residual_bad_input_is_rejected(tiny_model, default_tokenizer):
    tr = {"male": ["John", "James"], "female": ["Mary", "Linda"]}
    fit = E.class_prompts(default_tokenizer, tr, tr, n_shots=1)
    hook = "blocks.0.hook_resid_post"
    acts, labels, _ = E.harvest_fit_activations(tiny_model, fit, [hook])
    eraser = E.fit_mean_difference(acts[hook], labels, hook)
    resid = E.clean_residuals(tiny_model, fit.tokens, [hook])[hook]
    with pytest.raises(ValueError, match="same tokens"):
        E.task_scores(tiny_model, fit, eraser, resid=resid[:, :-1])
    with pytest.raises(ValueError, match="without an eraser"):
        E.task_scores(tiny_model, fit, resid=resid)
    with pytest.raises(ValueError, match="hook_resid_post"):
        E.clean_residuals(tiny_model, fit.tokens, ["blocks.0.mlp.hook_post"])
    with pytest.raises(E.EraserHookError):
        E.disruption(
            tiny_model,
            fit.tokens[:2],
            eraser,
            E.clean_log_probs(tiny_model, fit.tokens[:2]),
            separator_id=-1,
            hook="blocks.1.hook_resid_post",
            resid=resid[:2],
        )
