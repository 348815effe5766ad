from types import SimpleNamespace

import numpy as np
import pytest
import torch

from saelib.interp.explanations import format_explanation
from saelib.interp.logit_weights import (
    CHANCE,
    TextStatistics,
    logit_concentration,
    logit_weights,
    pairing_aurocs,
    promotion_auroc,
    score_features,
    summarize,
)
from saelib.model.lens import logit_lens


def fake_model(w_u: torch.Tensor, gain: torch.Tensor, w_out: torch.Tensor | None = None):
    """What ``logit_lens`` reads: W_U [d, vocab], the final norm's gain, and an MLP's W_out [d_mlp, d]."""
    norm = SimpleNamespace(original_component=SimpleNamespace(weight=gain))
    blocks = [SimpleNamespace(mlp=SimpleNamespace(W_out=w_out))] if w_out is not None else []
    return SimpleNamespace(W_U=w_u, ln_final=norm, blocks=blocks)


def test_direct_path_formula_by_hand():
    w_u = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]])  # d = 2, vocab = 3
    model = fake_model(w_u, torch.tensor([2.0, 0.5]))
    # direction (3, 4) has norm 5: unit (0.6, 0.8); times the gain (1.2, 0.4); through W_U: (1.2, 0.4, 2.0)
    got = logit_weights(model, torch.tensor([3.0, 4.0]))
    assert torch.allclose(got, torch.tensor([1.2, 0.4, 2.0]))
    both = logit_weights(model, torch.tensor([[3.0, 4.0], [0.0, -2.0]]))
    assert both.shape == (2, 3) and torch.allclose(both[1], torch.tensor([0.0, -0.5, 0.5]))
    assert torch.allclose(both, logit_lens(model, "blocks.5.hook_resid_post")(both.new_tensor([[0.6, 0.8], [0, -1]])))


def test_mlp_direction_goes_through_w_out():
    w_u, w_out = torch.eye(2), torch.tensor([[1.0, 1.0], [0.0, 3.0], [2.0, 0.0]])  # d_mlp = 3, d = 2
    model = fake_model(w_u, torch.ones(2), w_out)
    got = logit_weights(model, torch.tensor([0.0, 2.0, 0.0]), hook="blocks.0.mlp.hook_post")
    assert torch.allclose(got, torch.tensor([0.0, 3.0]))


def test_bad_directions_raise_clear_errors():
    model = fake_model(torch.eye(3), torch.ones(3))
    with pytest.raises(ValueError, match="width 2"):
        logit_weights(model, torch.ones(2))
    with pytest.raises(ValueError, match="zero norm"):
        logit_weights(model, torch.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        logit_weights(model, torch.tensor([1.0, float("nan"), 0.0]))
    with pytest.raises(ValueError, match=r"\[d\] or \[n, d\]"):
        logit_weights(model, torch.ones(1, 1, 3))


def test_auroc_is_mann_whitney_with_half_ties():
    weights = np.array([5.0, 4.0, 0.0, 0.0, 0.0])  # top 2 = candidates 0 and 1
    assert promotion_auroc(np.array([1.0, 1.0, 0, 0, 0]), weights, k=2) == 1.0
    assert promotion_auroc(np.zeros(5), weights, k=2) == CHANCE  # an explanation naming nothing
    assert promotion_auroc(np.array([1.0, 0, 0, 0, 0]), weights, k=2) == pytest.approx((3 + 1.5) / 6)
    assert promotion_auroc(np.array([0, 0, 1.0, 1.0, 1.0]), weights, k=2) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        pairing_aurocs(np.zeros((1, 5)), weights[None], k=5)
    with pytest.raises(ValueError, match="both be"):
        pairing_aurocs(np.zeros((2, 5)), np.zeros((2, 4)))


def test_concentration_is_large_for_a_peaked_direction():
    rng = np.random.default_rng(0)
    flat = rng.normal(size=5000)
    peaked = flat.copy()
    peaked[:5] += 20
    assert logit_concentration(peaked, 5) > logit_concentration(flat, 5) + 5
    assert np.isnan(logit_concentration(np.ones(10), 3))


# --- a planted toy: feature f fires on trigger token T_f, which the text always follows by one of f's three
# --- "successor" tokens; f's logit weights promote exactly those successors


N_FEATURES, K, VOCAB = 6, 3, 200
SEPARATOR = 0


def planted(seed: int = 0):
    rng = np.random.default_rng(seed)
    triggers = 10 + np.arange(N_FEATURES)  # token ids 10..15
    successors = 50 + np.arange(N_FEATURES * K).reshape(N_FEATURES, K)  # ids 50..67, three per feature
    tokens = rng.integers(100, VOCAB, size=(160, 16))  # filler text
    acts = np.zeros((N_FEATURES, *tokens.shape), np.float32)
    for f in range(N_FEATURES):
        frags = rng.choice(len(tokens), size=20, replace=False)
        for i in frags:
            pos = rng.integers(1, tokens.shape[1] - 1)
            tokens[i, pos], tokens[i, pos + 1] = triggers[f], rng.choice(successors[f])
    tokens[::7, 0] = SEPARATOR
    for f in range(N_FEATURES):
        acts[f][tokens == triggers[f]] = rng.uniform(2, 3, size=(tokens == triggers[f]).sum())
    weights = rng.normal(0, 0.1, size=(N_FEATURES, VOCAB))
    for f in range(N_FEATURES):
        weights[f, successors[f]] += 5.0
    strings = {t: f"tok{t}" for t in range(VOCAB)}
    return tokens, acts, weights, strings


def test_planted_feature_scores_near_the_top_and_shuffled_near_chance():
    tokens, acts, weights, strings = planted()
    text = TextStatistics(tokens, strings, exclude=[SEPARATOR])
    assert SEPARATOR not in text.candidates
    scores = score_features(range(N_FEATURES), weights, acts, text, k=K)
    for s in scores:
        assert s.status == "scored" and s.explanation.startswith("Fires on the tokens")
        assert s.score > 0.99 and abs(s.shuffled - CHANCE) < 0.05  # slightly below: its predictions are negatives there
        assert s.next_token > 0.99 and abs(s.next_token_shuffled - CHANCE) < 0.05
        assert s.naming_share == 0.0  # it names its trigger, not what it promotes
        assert s.promoted.tokens[0].startswith("tok5") or s.promoted.tokens[0].startswith("tok6")
    summary = summarize("planted", scores)
    assert summary.beats_control and summary.advantage.lo > 0.4 and summary.score.kind == "t"


def test_control_can_fail_when_outputs_are_unrelated_to_the_explanation():
    tokens, acts, weights, strings = planted()
    rng = np.random.default_rng(1)
    unrelated = rng.normal(size=weights.shape)  # logit weights that promote tokens no explanation predicts
    text = TextStatistics(tokens, strings, exclude=[SEPARATOR])
    summary = summarize("unrelated", score_features(range(N_FEATURES), unrelated, acts, text, k=K))
    assert not summary.beats_control
    assert abs(summary.score.mean - CHANCE) < 0.1


def test_previous_token_explanation_predicts_two_tokens_ahead():
    tokens = np.array([[1, 2, 3, 4, 1, 2, 3, 5]])
    text = TextStatistics(tokens, {t: f"t{t}" for t in range(6)})
    p = text.predict(format_explanation("previous", [("t1", 10)]))  # fires on the token after t1: 2; next: 3
    assert p.tolist() == [0, 0, 10.0, 0, 0]  # candidates 1..5, all of it on token 3
    p = text.predict(format_explanation("token", [("t2", 4)]))
    assert p.tolist() == [0, 0, 4.0, 0, 0]
    assert text.named(format_explanation("token", [("t2", 4)])).tolist() == [False, True, False, False, False]


def test_never_firing_feature_scores_at_chance():
    tokens, acts, weights, strings = planted()
    acts[0] = 0
    text = TextStatistics(tokens, strings, exclude=[SEPARATOR])
    s = score_features(range(N_FEATURES), weights, acts, text, k=K)[0]
    assert s.status == "never fires" and s.explanation == "" and s.score == CHANCE and s.next_token == CHANCE


def test_bad_inputs_raise_clear_errors():
    tokens, acts, weights, strings = planted()
    text = TextStatistics(tokens, strings, exclude=[SEPARATOR])
    with pytest.raises(ValueError, match="at least two"):
        score_features([0], weights[:1], acts[:1], text, k=K)
    with pytest.raises(ValueError, match="weights must be"):
        score_features(range(N_FEATURES), weights[:2], acts, text, k=K)
    with pytest.raises(ValueError, match="acts must be"):
        score_features(range(N_FEATURES), weights, acts[:, :5], text, k=K)
    with pytest.raises(ValueError, match="logit weights have 20 tokens"):
        score_features(range(N_FEATURES), weights[:, :20], acts, text, k=K)
    with pytest.raises(ValueError, match="no text for"):
        TextStatistics(tokens, {1: "a"})
    with pytest.raises(ValueError, match="not a token explanation"):
        text.predict("Fires on things about cats.")
