"""The IOI verdicts (saelib.experiments.patching.ioi_verdicts) on hand-built evidence tables: a claim supported at
every testable layer is reproduced, at some partly, at none not reproduced; a layer whose SAE error term removes too
much of the KL, or whose negative control also passes, cannot decide, and with no layer left the claim is not
testable here."""

import pandas as pd
import pytest

from saelib.core.stats import Estimate
from saelib.core.verdicts import Verdict
from saelib.experiments.patching import IOIPatchingResults, ioi_verdicts

CLAIMS = [
    "SAE features isolate the IOI counterfactual with fewer features than PCA, ICA or neurons",
    "sparsity helps: the α = 0 dictionary needs more features than a sparse one",
]
BELOW = Estimate(-1.0, 0.2, 8, -1.4, -0.6, kind="cluster bootstrap")  # interval below 0: supports / control passes
ABOVE = Estimate(1.0, 0.2, 8, 0.6, 1.4, kind="cluster bootstrap")  # interval above 0
SPANS = Estimate(0.0, 0.2, 8, -0.4, 0.4, kind="cluster bootstrap")  # interval across 0


def results(
    sae: list[Estimate],
    control: list[Estimate],
    shares: list[float],
    layers: tuple[int, ...] = (20, 26),
    dictionaries: str = "release",
) -> IOIPatchingResults:
    """Evidence with the same SAE and control differences against the baseline and against α = 0."""
    rows = [
        {
            "layer": la,
            "best SAE": "SAE α=0.00025",
            "best baseline": "ICA",
            "SAE error term alone removes": share,
            "SAE − baseline": s,
            "SAE − α=0": s,
            "random ranking − baseline": c,
            "random ranking − α=0": c,
        }
        for la, s, c, share in zip(layers, sae, control, shares)
    ]
    evidence = pd.DataFrame(rows).set_index("layer")
    return IOIPatchingResults(
        evidence=evidence, patch_layers=list(layers), max_error_share=0.10, dictionaries=dictionaries
    )


def verdict_of(r: IOIPatchingResults) -> list[str]:
    return [v.verdict for v in ioi_verdicts(r)]


def test_two_verdicts_with_the_claims_and_every_rule_field():
    out = ioi_verdicts(results([BELOW, BELOW], [ABOVE, ABOVE], [0.05, 0.05]))
    assert all(isinstance(v, Verdict) for v in out)
    assert [v.claim for v in out] == CLAIMS
    for v in out:
        assert v.rule and v.precondition and v.negative_control and v.positive_control and v.unit
        assert "at most 10%" in v.precondition


@pytest.mark.parametrize(
    ("sae", "expected"),
    [
        ([BELOW, BELOW], "reproduced"),
        ([BELOW, SPANS], "partly"),
        ([ABOVE, SPANS], "not reproduced"),
    ],
)
def test_counts_over_the_testable_layers(sae, expected):
    assert verdict_of(results(sae, [SPANS, SPANS], [0.05, 0.05])) == [expected, expected]


def test_a_layer_whose_error_term_removes_too_much_cannot_decide():
    r = results([BELOW, ABOVE], [SPANS, SPANS], [0.05, 0.44])
    assert r.testable == [20]
    out = ioi_verdicts(r)
    assert [v.verdict for v in out] == ["reproduced", "reproduced"]
    assert "supported at 1 of the 1 testable layers" in out[0].why
    assert "5% at L20, 44% at L26 (testable where ≤ 10%)" in out[0].why
    assert "SAE lower area at [20], higher at [26]" in out[0].why  # measured anyway, deciding nothing


def test_not_testable_here_when_no_layer_meets_the_precondition():
    r = results([BELOW, BELOW], [SPANS, SPANS], [0.12, 0.44])
    assert r.testable == []
    assert verdict_of(r) == ["not testable here", "not testable here"]


def test_a_layer_where_the_negative_control_passes_is_left_out():
    r = results([BELOW, ABOVE], [SPANS, BELOW], [0.05, 0.05])
    out = ioi_verdicts(r)
    assert [v.verdict for v in out] == ["reproduced", "reproduced"]  # L26 (against) is left out
    assert out[0].negative_control.endswith("passes at [26]")
    # the control passing at the only testable layer leaves nothing to decide
    assert verdict_of(results([BELOW], [BELOW], [0.05], layers=(20,))) == ["not testable here"] * 2


def test_negative_control_that_fails_everywhere_says_so():
    out = ioi_verdicts(results([BELOW, BELOW], [ABOVE, SPANS], [0.05, 0.05]))
    assert out[0].negative_control.endswith("fails at every layer, as it should")
    assert "beats the baseline at no layer" in out[0].why
    assert "beats α = 0 at no layer" in out[1].why


def test_the_alpha_zero_controls_origin_follows_the_dictionaries_setting():
    release = ioi_verdicts(results([BELOW, BELOW], [SPANS, SPANS], [0.05, 0.05], dictionaries="release"))[1]
    profile = ioi_verdicts(results([BELOW, BELOW], [SPANS, SPANS], [0.05, 0.05], dictionaries="profile"))[1]
    assert release.why.endswith("a member of the same release ensemble (same data, recipe and seed)")
    assert profile.why.endswith("trained here on the profile's activations")
    assert release.ours == f"curve area, sparse SAE − α=0: L20: {BELOW}; L26: {BELOW}"
