"""Concept erasure on the default model: scoring agrees with saelib.model.behaviour, and LEACE / mean-difference erasers
fitted on training names remove the gender signal from held-out names' activations and lower the task score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saelib.experiments import erasure as E
from saelib.model.behaviour import last_token_logits, two_way_probability
from saelib.text.names import gendered_names

HOOK = "blocks.8.hook_resid_post"


@pytest.fixture(scope="module")
def setup(default_model):
    tok = default_model.tokenizer
    train, test = E.split_single_token_names(tok, gendered_names(tok), 40, 0.25, min_train=3)
    fit = E.class_prompts(tok, train, train, n_shots=1)
    test_cls = E.class_prompts(tok, test, train, n_shots=1, seed=1)
    acts, labels, _ = E.harvest_fit_activations(default_model, fit, [HOOK])
    test_acts, test_labels, _ = E.harvest_fit_activations(default_model, test_cls, [HOOK])
    return tok, test, test_cls, acts[HOOK], labels, test_acts[HOOK], test_labels


def test_unedited_scores_match_evaluation(default_model, setup):
    tok, test, test_cls, *_ = setup
    pro = E.pronoun_prompts(tok, test, n_templates=2)
    for ps in (test_cls, pro):
        ours = E.task_scores(default_model, ps)["p_correct"]
        logits = last_token_logits(default_model, ps.texts)
        correct = ps.answer_ids[ps.labels]
        wrong = ps.answer_ids[1 - ps.labels]
        ref = two_way_probability(logits, correct, wrong).numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert ours.mean() > 0.8  # the model predicts the pronoun from the name


@pytest.mark.parametrize("fit", [E.fit_leace, E.fit_mean_difference])
def test_erasers_remove_gender_from_held_out_names(default_model, setup, fit):
    _, _, test_cls, x, y, x_test, y_test = setup
    assert E.probe_accuracy(x, y, x_test, y_test) > 0.85
    eraser = fit(x, y, HOOK)
    assert E.probe_accuracy(eraser.transform(x), y, eraser.transform(x_test), y_test) < 0.7
    base = E.task_scores(default_model, test_cls)["p_correct"].mean()
    edited = E.task_scores(default_model, test_cls, eraser)
    assert edited["p_correct"].mean() < base - 0.03
    assert (edited["edit_norm"] > 0).all()


def test_disruption_of_one_direction_is_small_and_ce_matches_clean_run(default_model, setup):
    _, _, _, x, y, _, _ = setup
    tokens = torch.tensor(
        [
            default_model.tokenizer.encode(
                " The weather was fine, so the children walked to school together and played in the park after lunch.",
                add_special_tokens=False,
            )
        ]
    )
    clean = E.clean_log_probs(default_model, tokens)
    mean_diff = E.fit_mean_difference(x, y, HOOK)
    d = E.disruption(default_model, tokens, mean_diff, clean, separator_id=-1)
    assert 0 <= d["kl"] < 0.5 and abs(d["ce_increase"]) < 0.5 and 0 < d["edit_norm_relative"] < 0.5
    assert d["ce_clean"] == pytest.approx(
        torch.nn.functional.cross_entropy(clean[0, :-1], tokens[0, 1:]).item(), abs=1e-4
    )
