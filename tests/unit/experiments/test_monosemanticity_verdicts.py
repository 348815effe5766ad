"""Notebook 06's verdict rules (saelib.experiments.monosemanticity.monosemanticity_verdicts) on small synthetic
results: one verdict per claim in the notebook's order, claims that hold give "reproduced", claims that fail give
"not reproduced", and the "not testable here" branches fire when their controls do not separate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from saelib.core.profiles import MonosemanticitySizes
from saelib.core.stats import Estimate, proportion
from saelib.core.verdicts import Verdict
from saelib.experiments.monosemanticity import MonosemanticityResults, monosemanticity_verdicts

SIZES = MonosemanticitySizes(
    min_fires=5,
    invisible_corr=0.5,
    steer_layer=14,
    steer_sources=("bible", "python_docs"),
    steer_min_density=0.002,
    clamp_multiples=(3.0,),
    steer_samples=2,
    steer_new_tokens=8,
    classifier_chunk_tokens=8,
    classifier_per_source=4,
    family_cosine=0.5,
)
PROMPTS = ["The", "In the", "It is", "One day", "We", "This is", "When I", "There was"]
PROMPT_OF = np.repeat(np.arange(len(PROMPTS)), SIZES.steer_samples)
N = len(PROMPT_OF)
CLAIMS = [
    "most features are invisible to single neurons (Bricken et al.)",
    "clamping a feature high steers generation to its kind of text (Bricken et al.)",
    "dictionaries from different seeds share features (universality, Bricken et al.)",
    "universality across models (Bricken et al.: transformers A and B)",
    "features split into families as the dictionary grows (Bricken et al.)",
]


def rate(k: int, n: int = 100) -> Estimate:
    """A Wilson estimate of k successes in n."""
    return proportion(np.arange(n) < k)


def results(
    *,
    auc: tuple[int, int, int],  # invisible by AUC, out of 100: SAE features, random directions, single neurons
    clamped: bool,  # every continuation classified as the source with the feature clamped (none if False)
    random_feature: bool = False,  # ... with a random feature clamped (none without a clamp)
    gibberish: int = 0,  # random-token texts (of N) classified as each source
    seed_shared: int = 80,  # seed-0 features shared with seed 1, out of 100
    random_shared: int = 10,  # the same for random directions
    split: tuple[int, ...] = (5, 10, 20),  # smallest-dictionary features with >= 2 children, out of 100, per size
) -> MonosemanticityResults:
    sae, rand, single = auc
    by_auc = {"SAE features": rate(sae), "random directions": rate(rand), "single neurons": rate(single)}
    by_corr = {"SAE features": rate(90), "random directions": rate(99), "single neurons": rate(80)}

    hits = {}
    for source in SIZES.steer_sources:
        hits[(source, "no clamp", 0.0)] = np.zeros(N)
        hits[(source, "feature", 3.0)] = np.full(N, float(clamped))
        hits[(source, "random feature", 3.0)] = np.full(N, float(random_feature))
    universality = pd.DataFrame(
        [
            {"pair": name, "shared (corr >= 0.7)": e.mean, "low": e.lo, "high": e.hi}
            for name, e in (
                ("SAE seed 0 -> seed 1", rate(seed_shared)),
                ("SAE seed 0 -> release (16x data)", rate(seed_shared)),
                ("random directions (top-8) seed 0 -> seed 1", rate(random_shared)),
            )
        ]
    )
    splitting = pd.DataFrame(
        [
            {"from": "R=1", "to": f"R={r:g}", "with >= 2 children": e.mean, "low": e.lo, "high": e.hi}
            for r, e in zip((2.0, 4.0, 8.0), (rate(k) for k in split))
        ]
    )
    return MonosemanticityResults(
        mlp_lambda=3.3,
        by_corr=by_corr,
        by_auc=by_auc,
        prompts=PROMPTS,
        hits=hits,
        prompt_of=PROMPT_OF,
        gibberish_as={source: rate(gibberish, N) for source in SIZES.steer_sources},
        universality=universality,
        splitting=splitting,
        smallest=1.0,
    )


def verdicts_of(r: MonosemanticityResults) -> dict[str, str]:
    rows = monosemanticity_verdicts(r, SIZES, seed=0)
    assert all(isinstance(v, Verdict) for v in rows)
    assert [v.claim for v in rows] == CLAIMS
    return {v.claim: v.verdict for v in rows}


def test_claims_that_hold_are_reproduced():
    v = verdicts_of(results(auc=(80, 99, 0), clamped=True))
    assert v[CLAIMS[0]] == "reproduced"
    assert v[CLAIMS[1]] == "reproduced"
    assert v[CLAIMS[2]] == "reproduced"
    assert v[CLAIMS[3]] == "not testable here"  # not measured: fixed
    assert v[CLAIMS[4]] == "reproduced"


def test_claims_that_fail_are_not_reproduced():
    v = verdicts_of(
        results(auc=(10, 99, 0), clamped=False, seed_shared=10, random_shared=10, split=(5, 2, 0)),
    )
    assert v[CLAIMS[0]] == "not reproduced"
    assert v[CLAIMS[1]] == "not reproduced"
    assert v[CLAIMS[2]] == "not reproduced"
    assert v[CLAIMS[4]] == "not reproduced"


def test_partial_support_is_partly():
    v = verdicts_of(results(auc=(45, 99, 0), clamped=True, seed_shared=35, random_shared=10, split=(20, 10, 5)))
    assert v[CLAIMS[0]] == "partly"  # the interval straddles one half
    assert v[CLAIMS[2]] == "partly"  # clears random directions, but not most features
    assert v[CLAIMS[4]] == "partly"  # above 0 at the largest size, but falling


def test_controls_that_do_not_separate_make_the_claim_not_testable():
    # single neurons come out invisible as often as random directions: the AUC measure cannot decide
    r = results(auc=(80, 99, 90), clamped=True)
    assert verdicts_of(r)[CLAIMS[0]] == "not testable here"
    # the classifier calls random-token text the source more often than MAX_GIBBERISH: no source is testable
    assert verdicts_of(results(auc=(80, 99, 0), clamped=True, gibberish=N))[CLAIMS[1]] == "not testable here"
    # the random feature steers as well as the clamped one: every source is left out by the negative control
    steer = monosemanticity_verdicts(results(auc=(80, 99, 0), clamped=True, random_feature=True), SIZES, seed=0)[1]
    assert steer.verdict == "not testable here"
    assert "supported for ['bible', 'python_docs']" in steer.negative_control


def test_texts_carry_the_measured_numbers_and_stable_rules():
    rows = monosemanticity_verdicts(results(auc=(80, 99, 0), clamped=True), SIZES, seed=0)
    assert rows[0].ours.startswith("MLP-14 SAE (λ=3.3): 80% [")
    assert f"(n = {N} each, {len(PROMPTS)} prompts)" in rows[1].ours
    assert rows[4].ours.startswith("R=1 features with >= 2 children: R=2 0.05 [")
    for v in rows:  # the rule lines hold no measured numbers
        for field in (v.rule, v.precondition, v.unit):
            assert "80%" not in field and "0.05 [" not in field
