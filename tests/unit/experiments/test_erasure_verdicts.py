"""Notebook 04's verdict rules (``erasure.erasure_verdicts``) on small synthetic results built so that each claim
holds, fails, or cannot be tested."""

from __future__ import annotations

import numpy as np

from saelib.core.verdicts import VERDICTS, Verdict
from saelib.experiments import erasure as E

CLAIMS = [
    "projecting out the top SAE feature erases more gender information than controls",
    "one SAE feature erases as much as LEACE with no more disruption",
    "LEACE removes the linearly decodable gender signal",
]
NAMES = [f"name{i}" for i in range(12)]
PROMPT_NAMES = [n for n in NAMES for _ in range(2)]  # two pronoun prompts per name
ROW_NAMES = [n for n in NAMES for _ in range(2)]  # two probe rows per name
POOLS = ("random", "PCA", "ICA")
BASELINE = 0.9  # unedited pronoun score

# per layer: score left after each edit (erasure = BASELINE - score), KL per context, held-out probe accuracy
HOLDS = {
    "after": {
        "LEACE": 0.6,
        "mean difference": 0.5,
        "SAE top-1": 0.5,
        "random top-1": 0.88,
        "best random top-1": 0.85,
        "best PCA top-1": 0.85,
        "best ICA top-1": 0.85,
        "LEACE + top PC": 0.6,
    },
    "kl": {"LEACE": 0.1, "SAE top-1": 0.01, "best random top-1": 0.05, "LEACE + top PC": 0.3},
    "probe": {"LEACE": 0.5, "mean difference": 0.5, "best random top-1": 1.0},
    "probe_before": 1.0,
}
FAILS = {
    "after": {**HOLDS["after"], "SAE top-1": 0.85, "best random top-1": 0.87},
    "kl": {**HOLDS["kl"], "SAE top-1": 0.2},
    "probe": {**HOLDS["probe"], "LEACE": 1.0},
    "probe_before": 1.0,
}
UNTESTABLE = {  # no edit erases anything (mean difference, LEACE) and the probe cannot read gender before erasure
    "after": dict.fromkeys(HOLDS["after"], BASELINE),
    "kl": HOLDS["kl"],
    "probe": HOLDS["probe"],
    "probe_before": 0.5,
}


def _noise(seed: int, n: int, scale: float) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(n)


def _correct(accuracy: float) -> np.ndarray:
    """Per probe row, whether the probe is right: every name gets the same accuracy (1, or one of its two rows)."""
    return np.arange(len(ROW_NAMES)) % 2 == 0 if accuracy == 0.5 else np.ones(len(ROW_NAMES), dtype=bool)


def results(layers: dict[int, dict]) -> E.ErasureResults:
    """ErasureResults with one hook per layer, each built from a case (HOLDS, FAILS, UNTESTABLE)."""
    hooks = [f"blocks.{layer}.hook_resid_post" for layer in layers]
    baseline = np.full(len(PROMPT_NAMES), BASELINE)
    per_prompt, per_context, probe_rows, probe_before = {}, {}, {}, {}
    for i, (hook, case) in enumerate(zip(hooks, layers.values())):
        for j, (method, after) in enumerate(case["after"].items()):
            noise = _noise(100 * i + j, len(PROMPT_NAMES), 0.0 if after == BASELINE else 0.01)
            per_prompt[(hook, method, "pronoun", "query")] = after + noise
        for j, (method, kl) in enumerate(case["kl"].items()):
            per_context[(hook, method)] = kl + _noise(1000 + 100 * i + j, 8, 0.002)
        for method, accuracy in case["probe"].items():
            probe_rows[(hook, method)] = _correct(accuracy)
        probe_before[hook] = _correct(case["probe_before"])
    return E.ErasureResults(
        hooks=hooks,
        controls={h: POOLS for h in hooks},
        k1=1,
        baseline={"pronoun": {"p_correct": baseline}},
        per_prompt=per_prompt,
        prompt_names={"pronoun": PROMPT_NAMES},
        per_context=per_context,
        probe_before=probe_before,
        probe_rows=probe_rows,
        probe_row_names=ROW_NAMES,
        top_cos2={layer: 0.25 for layer in layers},
        seed=0,
    )


def verdicts_of(layers: dict[int, dict]) -> list[str]:
    return [v.verdict for v in E.erasure_verdicts(results(layers))]


def test_returns_the_three_claims_with_rules():
    vs = E.erasure_verdicts(results({3: HOLDS}))
    assert all(isinstance(v, Verdict) for v in vs)
    assert [v.claim for v in vs] == CLAIMS
    assert all(v.verdict in VERDICTS for v in vs)
    assert all(v.rule and v.precondition and v.negative_control and v.positive_control and v.unit for v in vs)


def test_claims_hold():
    vs = E.erasure_verdicts(results({3: HOLDS}))
    assert [v.verdict for v in vs] == ["reproduced"] * 3
    assert vs[0].why == (
        "beats all three controls at layers 3 of the testable 3; negative control passes (layer left out) at none; "
        "positive control passes at 3"
    )
    assert vs[1].ours == "SAE top-1 against LEACE: L3: SAE top-1 dominates"
    assert vs[1].why.endswith("positive control passes at 3; cos² of the top feature L3 0.25")
    assert vs[2].ours.startswith("probe accuracy after LEACE: L3: 0.500 (cluster-bootstrap 95% CI [0.500, 0.500]")


def test_claims_fail():
    vs = E.erasure_verdicts(results({3: FAILS}))
    assert [v.verdict for v in vs] == ["not reproduced"] * 3
    assert vs[1].ours == "SAE top-1 against LEACE: L3: LEACE dominates"


def test_mixed_layers_give_partly():
    vs = E.erasure_verdicts(results({3: HOLDS, 7: FAILS}))
    assert [v.verdict for v in vs] == ["partly"] * 3
    assert vs[0].ours.startswith("pronoun erasure, SAE top-1 minus the best-aligned random / PCA / ICA direction: L3: ")
    assert "; L7: " in vs[0].ours
    assert "at layers 3 of the testable 3, 7;" in vs[0].why


def test_not_testable_when_nothing_erases_and_the_probe_reads_nothing():
    vs = E.erasure_verdicts(results({3: UNTESTABLE}))
    assert [v.verdict for v in vs] == ["not testable here"] * 3
    assert vs[1].ours == "SAE top-1 against LEACE: L3: not testable"
    assert "of the testable none" in vs[1].why


def test_a_negative_control_that_passes_leaves_the_layer_out():
    # a random SAE feature that beats the controls too: the rule cannot decide claim 1 at that layer
    leaky = {**HOLDS, "after": {**HOLDS["after"], "random top-1": 0.5}}
    vs = E.erasure_verdicts(results({3: leaky, 7: HOLDS}))
    assert vs[0].verdict == "reproduced"
    assert "of the testable 7; negative control passes (layer left out) at 3;" in vs[0].why
    assert verdicts_of({3: leaky}) == ["not testable here", "reproduced", "reproduced"]
