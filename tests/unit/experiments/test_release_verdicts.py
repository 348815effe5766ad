from saelib.dictionaries.release_comparison import MatchedL0Row
from saelib.experiments.release_dictionaries import (
    ReferenceFrontier,
    ResamplingPairMember,
    SizePair,
    architecture_verdicts,
    resampling_verdict,
    size_sharing_verdict,
)


def test_resampling_revives_but_does_not_help_is_partly():
    acting = ResamplingPairMember(3.3, 100, 100, fvu_with=0.61, fvu_without=0.58, dead_with=0.01, dead_without=0.004)
    idle = ResamplingPairMember(1.0, 0, 0, 0.43, 0.43, 0.0, 0.0)
    assert resampling_verdict([idle, acting]).verdict == "partly"
    helps = ResamplingPairMember(3.3, 100, 95, 0.55, 0.58, 0.001, 0.004)
    assert resampling_verdict([idle, helps]).verdict == "reproduced"
    silent = ResamplingPairMember(3.3, 100, 10, 0.55, 0.58, 0.001, 0.004)
    assert resampling_verdict([idle, silent]).verdict == "not reproduced"


def test_resampling_without_action_or_with_a_broken_pair_is_not_testable():
    idle = ResamplingPairMember(1.0, 0, 0, 0.43, 0.43, 0.0, 0.0)
    assert resampling_verdict([idle]).verdict == "not testable here"
    unpaired = ResamplingPairMember(1.0, 0, 0, 0.43, 0.45, 0.0, 0.0)  # differ where resampling did nothing
    acting = ResamplingPairMember(3.3, 100, 100, 0.55, 0.58, 0.001, 0.004)
    assert resampling_verdict([unpaired, acting]).verdict == "not testable here"
    assert resampling_verdict([]).verdict == "not testable here"


def test_size_sharing_needs_twice_random_and_leaves_out_a_failing_negative_control():
    pairs = [SizePair(2, 0.30, 0.05, 0.144, None), SizePair(8, 0.25, 0.03, 0.144, None)]
    assert size_sharing_verdict(pairs).verdict == "partly"
    both = [SizePair(20, 0.33, 0.04, 0.145, 0.21), SizePair(26, 0.33, 0.03, 0.145, 0.31)]
    v = size_sharing_verdict(both)  # L26's cross-layer control clears 2x random: left out
    assert v.verdict == "reproduced" and "at L26" in v.why and "1 of the testable 1" in v.why


def _row(layer, arch, target, l0, fvu):
    return MatchedL0Row(
        layer, arch, target, f"{arch} {target}", l0, abs(l0 - target) <= 0.1 * target, fvu, 0.9, 0.9, 0.9, 0.9, 0.0, 0.0
    )


def test_architectures_against_relu_l1_at_matched_l0():
    rows = [
        _row(14, "tied", 16.0, 15.0, 0.40),
        _row(14, "tied", 32.0, 34.0, 0.28),
        _row(14, "topk", 16.0, 16.0, 0.33),
        _row(14, "topk", 32.0, 32.0, 0.275),
        _row(14, "batchtopk", 16.0, 16.5, 0.30),
        _row(14, "batchtopk", 32.0, 31.0, 0.20),
    ]
    by_arch = {v.claim.split()[0].lower(): v for v in architecture_verdicts(rows, margin=0.01)}
    assert by_arch["topk"].verdict == "partly"  # better by 0.07 at 16, by 0.005 (< margin) at 32
    assert by_arch["batchtopk"].verdict == "reproduced"
    assert by_arch["jumprelu"].verdict == "not testable here" and by_arch["jumprelu"].ours == "not trained"


def test_a_negative_control_that_beats_relu_l1_makes_the_comparison_undecidable():
    rows = [_row(14, "tied", 16.0, 15.0, 0.40), _row(14, "topk", 16.0, 16.0, 0.30)]
    weak_pilot = ReferenceFrontier(14, ((10.0, 0.8), (50.0, 0.5)))
    assert architecture_verdicts(rows, 0.01, pilot=[weak_pilot])[0].verdict == "reproduced"
    strong_pilot = ReferenceFrontier(14, ((10.0, 0.2), (50.0, 0.1)))
    v = architecture_verdicts(rows, 0.01, pilot=[strong_pilot])[0]
    assert v.verdict == "not testable here" and "1 of 1 pairs" in v.why


def test_positive_control_is_reported():
    rows = [_row(14, "tied", 16.0, 15.0, 0.30), _row(14, "topk", 16.0, 16.0, 0.20)]
    narrow = ReferenceFrontier(14, ((10.0, 0.5), (50.0, 0.3)))
    assert (
        "positive control (ReLU-L1 R = 8 beats R = 2) at 1 of 1"
        in architecture_verdicts(rows, 0.01, narrower=[narrow])[0].why
    )
