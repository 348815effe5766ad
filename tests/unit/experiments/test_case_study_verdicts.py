"""Case-study verdicts (saelib.experiments.case_studies.case_study_verdicts) on small synthetic results: the three
claims in order, and each rule's outcomes (reproduced, partly, not reproduced, not testable here) from results built
to give them."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from saelib.core.verdicts import Verdict
from saelib.experiments.case_studies import CaseStudyResults, case_study_verdicts
from saelib.interp.case_studies import F1Bootstrap

CLAIMS = [
    "an apostrophe feature, chosen out of sample, matches the apostrophe proxy better than neuron, PCA and ICA "
    "directions",
    "its output effect promotes what follows an apostrophe",
    "a closing-parenthesis circuit across residual layers, found by ablation",
]
SAE = "SAE L8/7"
BASELINES = ["neuron L2/+3", "PCA L8/-1", "ICA L2/-5"]
RANDOM = "random direction L8/+9"


def f1_boot(sae: float, baselines: tuple[float, ...] = (0.3, 0.2, 0.1), random: float = 0.1, spread: float = 0.01):
    """Evaluation-half F1 with bootstrap replicates scattered by ``spread`` around each point (independently per
    column, so a paired difference's interval is about 1.4 × ``spread`` × 2 wide on each side)."""
    names = [SAE, *BASELINES, RANDOM, "proxy itself"]
    point = np.array([sae, *baselines, random, 1.0])
    boot = point + np.random.default_rng(0).normal(0, spread, (400, len(names)))
    return F1Bootstrap(names, point, boot, 30)


def edges(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    """Kept circuit edges (source layer, target layer, upper end of the mediated part's interval)."""
    return pd.DataFrame(
        [
            {
                "source_layer": s,
                "source": 10 + s,
                "target_layer": t,
                "target": 10 + t,
                "source_proxy": "closing",
                "effect": -0.8,
                "effect_lo": -0.9,
                "effect_hi": -0.7,
                "direct": -0.6,
                "mediated": -0.2,
                "mediated_lo": mediated_hi - 0.2,
                "mediated_hi": mediated_hi,
            }
            for s, t, mediated_hi in rows
        ],
        columns=[
            "source_layer",
            "source",
            "target_layer",
            "target",
            "source_proxy",
            "effect",
            "effect_lo",
            "effect_hi",
            "direct",
            "mediated",
            "mediated_lo",
            "mediated_hi",
        ],
    )


def ablation(minus_control_hi: float, positions: int = 100, clusters: int = 30, watch_hi: float | None = None):
    """An ``AblationResult.summary``-like dict; ``watch_hi`` adds the watched token's keys."""
    out = {
        "positions": positions,
        "contexts": clusters,
        "clusters": clusters,
        "delta_next_token": -0.2,
        "delta_lo": -0.3,
        "delta_hi": -0.1,
        "control_delta": -0.01,
        "minus_control": minus_control_hi - 0.1,
        "minus_control_lo": minus_control_hi - 0.2,
        "minus_control_hi": minus_control_hi,
    }
    if watch_hi is not None:
        out |= {"watch": -0.5, "watch_minus_control": watch_hi - 0.1, "watch_minus_control_lo": watch_hi - 0.2}
        out |= {"watch_minus_control_hi": watch_hi, "watch_lo": -0.6, "watch_hi": -0.4, "watch_control": 0.0}
    return out


def results(apostrophe_documents: int = 60) -> CaseStudyResults:
    """Results for which every claim holds: 60 documents of 5 rows, even ones in the selection half, an apostrophe
    token in the first row of each of the first ``apostrophe_documents``."""
    documents = np.repeat(np.arange(60), 5)
    on_apos = (np.arange(300) % 5 == 0) & (documents < apostrophe_documents)
    selection = documents % 2 == 0
    return CaseStudyResults(
        layers=[2, 8, 14, 20, 26],
        apostrophe_layer=8,
        target_layer=14,
        apostrophe_col=np.where(on_apos, 2.0, 0.1).astype(np.float32),
        on_apostrophe=on_apos,
        documents=documents,
        selection_rows=selection,
        evaluation_rows=~selection,
        selection_f1=0.85,
        f1_boot=f1_boot(0.9),
        sae_name=SAE,
        baseline_names=BASELINES,
        best_baseline=BASELINES[0],
        random_name=RANDOM,
        summary=ablation(-0.05),
        s_summary=ablation(-0.05, positions=40, clusters=12, watch_hi=-0.1),
        s_falls=[(" s", 0.2), ("t", 0.1)] + [(f"x{i}", 0.01) for i in range(8)],
        random_feature=123,
        r_summary=ablation(0.02),
        edges=edges([(8, 14, -0.05), (2, 8, -0.02)]),
        circuit_controls=pd.DataFrame({"kept": [False, False]}),
        control_passes=0,
        window_docs=np.arange(32) % 8,
        direct_share=0.7,
    )


def verdict_of(r: CaseStudyResults, claim: int) -> str:
    return case_study_verdicts(r)[claim].verdict


def test_three_verdicts_with_the_claims_in_order_and_every_rule_field():
    out = case_study_verdicts(results())
    assert all(isinstance(v, Verdict) for v in out)
    assert [v.claim for v in out] == CLAIMS
    assert [v.verdict for v in out] == ["reproduced"] * 3
    for v in out:
        assert v.rule and v.precondition and v.negative_control and v.positive_control and v.unit
    assert "negative control random direction L8/+9 0.100 (not reproduced)" in out[0].why
    assert "passes by construction" in out[0].positive_control and "reproduced" in out[0].positive_control
    assert "random feature L8/123 through the first part" in out[1].why
    assert out[1].negative_control.endswith(
        "it fails, as it should; the same-norm random direction is subtracted in both parts"
    )
    assert "hops with a significantly negative mediated edge: [2, 8] of [2, 8]" in out[2].why


@pytest.mark.parametrize(
    ("sae", "spread", "expected"),
    [(0.9, 0.01, "reproduced"), (0.31, 0.1, "partly"), (0.1, 0.01, "not reproduced")],
)
def test_apostrophe_rule(sae, spread, expected):
    assert verdict_of(replace(results(), f1_boot=f1_boot(sae, spread=spread)), 0) == expected


def test_apostrophe_not_testable_with_apostrophes_in_few_documents():
    # apostrophes in the first 30 documents: 15 per half, under the 20 the precondition asks
    assert verdict_of(results(apostrophe_documents=30), 0) == "not testable here"
    assert verdict_of(results(apostrophe_documents=40), 0) == "reproduced"


def test_output_rule():
    r = results()
    assert verdict_of(r, 1) == "reproduced"
    # the 's' part fails (interval includes 0): one of two parts
    assert verdict_of(replace(r, s_summary=ablation(-0.05, 40, 12, watch_hi=0.05)), 1) == "partly"
    # neither part
    neither = replace(r, summary=ablation(0.05), s_summary=ablation(-0.05, 40, 12, watch_hi=0.05))
    assert verdict_of(neither, 1) == "not reproduced"
    # too few standalone apostrophes: part (1) alone decides, partly at most
    few = ablation(-0.05, positions=19, clusters=12, watch_hi=-0.1)
    assert verdict_of(replace(r, s_summary=few), 1) == "partly"
    assert verdict_of(replace(r, s_summary=few, summary=ablation(0.05)), 1) == "not testable here"
    # a random feature that passes part (1) is reported, not decided on
    v = case_study_verdicts(replace(r, r_summary=ablation(-0.01)))[1]
    assert v.verdict == "reproduced" and "it passes too" in v.negative_control


def test_circuit_rule():
    r = results()
    assert verdict_of(r, 2) == "reproduced"
    # edges reach every earlier layer, but the L2 -> L8 hop is all direct residual path
    assert verdict_of(replace(r, edges=edges([(8, 14, -0.05), (2, 8, 0.03)])), 2) == "partly"
    # edges that miss an earlier layer
    assert verdict_of(replace(r, edges=edges([(8, 14, -0.05)])), 2) == "partly"
    empty = case_study_verdicts(replace(r, edges=edges([]), direct_share=float("nan")))[2]
    assert empty.verdict == "not reproduced" and empty.ours == "no significant edge"
    # the negative control kept at a node, or windows from too few documents: the rule cannot decide
    controls = pd.DataFrame({"kept": [True, False]})
    assert verdict_of(replace(r, circuit_controls=controls, control_passes=1), 2) == "not testable here"
    assert verdict_of(replace(r, window_docs=np.arange(32) % 4), 2) == "not testable here"
