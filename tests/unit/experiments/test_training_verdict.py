from saelib.experiments.training import SweepMember, trades_off, tradeoff_verdict


def _sweep(fvus, l0s=(100.0, 40.0, 10.0)):
    return [SweepMember(a, l0, f) for a, l0, f in zip((1e-3, 2e-3, 4e-3), l0s, fvus)]


def test_trade_off_holds_only_when_l0_falls_and_fvu_rises():
    assert trades_off(_sweep((0.1, 0.2, 0.3)))
    assert not trades_off(_sweep((0.1, 0.3, 0.2)))  # an under-trained middle member
    assert not trades_off(_sweep((0.1, 0.2, 0.3), l0s=(10.0, 40.0, 100.0)))


def test_verdict_counts_layers_and_reports_the_positive_control():
    good, bad = _sweep((0.1, 0.2, 0.3)), _sweep((0.1, 0.3, 0.2))
    assert tradeoff_verdict({2: good, 8: good}, {2: good}).verdict == "reproduced"
    partly = tradeoff_verdict({2: good, 8: bad}, {2: good, 8: good})
    assert partly.verdict == "partly"
    assert "FVU not monotone at L8" in partly.why and "holds at 2 of 2" in partly.why
    assert tradeoff_verdict({2: bad}, {}).verdict == "not reproduced"


def test_too_few_members_is_not_testable():
    v = tradeoff_verdict({2: _sweep((0.1, 0.2))}, {})
    assert v.verdict == "not testable here"
