import numpy as np
import pytest

from saelib.core.check import RECORDED_ON, check, check_between, regression
from saelib.core.stats import mean_se, proportion


def test_check_prints_stable_line_and_raises_outside_tolerance(capsys):
    check("x", 1.02, 1.0, rtol=0.05)
    out = capsys.readouterr().out
    assert "x: measured=1.02" in out and "x ~= 1 (rtol=0.05): OK" in out
    with pytest.raises(AssertionError, match="not within"):
        check("x", 1.2, 1.0, rtol=0.05)
    with pytest.raises(AssertionError):
        check("x", float("nan"), 1.0, atol=1.0)
    with pytest.raises(AssertionError):
        check_between("p", 0.4, 0.5, 1.0)


def test_mean_se_and_proportion():
    est = mean_se([1.0, 2.0, 3.0])
    assert est.mean == 2.0 and est.se == pytest.approx(1 / np.sqrt(3))
    assert est.ci95 == pytest.approx((2.0 - 4.302653 / np.sqrt(3), 2.0 + 4.302653 / np.sqrt(3)))  # t, 2 dof
    assert proportion([1, 1, 0, 0]).se == pytest.approx(0.25)


def test_proportion_has_a_wilson_interval_that_does_not_collapse_at_the_boundary():
    z2 = 1.959964**2
    all_right = proportion([True] * 100)
    assert all_right.mean == 1.0 and all_right.hi == pytest.approx(1.0)
    assert all_right.lo == pytest.approx(100 / (100 + z2), rel=1e-5)  # Wilson's lower bound at p = 1: n / (n + z^2)
    assert "Wilson 95% CI [0.963, 1.000], n=100" in str(all_right)
    half = proportion([1, 0] * 50)
    assert half.lo == pytest.approx(1 - half.hi) and 0.40 < half.lo < 0.41  # symmetric at 0.5
    with pytest.raises(ValueError, match="booleans"):
        proportion([0.3, 0.7])
    with pytest.raises(ValueError):
        mean_se([])


def test_regression_values_are_compared_only_on_the_profile_that_recorded_them(capsys):
    regression("loss", 3.53, 3.525, profile=RECORDED_ON, rtol=0.01)
    assert "loss ~= 3.525 (rtol=0.01): OK" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not within"):
        regression("loss", 4.127, 3.525, profile=RECORDED_ON, rtol=0.01)
    regression("loss", 4.127, 3.525, profile="dev", rtol=0.01)  # another run size: reported, not compared
    out = capsys.readouterr().out
    assert "loss: measured=4.127" in out and "3.525 on the default profile; not compared on 'dev'" in out
    with pytest.raises(AssertionError, match="finite"):
        regression("loss", float("nan"), 3.525, profile="dev", rtol=0.01)


def test_cluster_bootstrap_widens_the_interval_for_correlated_rows():
    from saelib.core.stats import cluster_bootstrap

    rng = np.random.default_rng(0)
    names = np.repeat(np.arange(20), 10)  # 20 names x 10 prompts: prompts of one name share its offset
    values = rng.normal(0, 1, 20)[names] + rng.normal(0, 0.1, names.size)
    clustered, naive = cluster_bootstrap(values, names, seed=0), mean_se(values)
    assert clustered.n == 20 and clustered.kind == "cluster bootstrap"
    assert clustered.lo <= clustered.mean <= clustered.hi
    assert (clustered.hi - clustered.lo) > 2.5 * (naive.hi - naive.lo)  # ~sqrt(10) wider
    independent = rng.normal(0, 1, 200)
    assert cluster_bootstrap(independent, np.arange(200)).se == pytest.approx(mean_se(independent).se, rel=0.2)
    assert "clusters" in str(clustered) and clustered.above(-10) and not clustered.below(clustered.lo)


def test_cluster_bootstrap_edge_cases():
    from saelib.core.stats import cluster_bootstrap

    one = cluster_bootstrap([1.0, 2.0, 3.0], ["a", "a", "a"])
    assert (one.mean, one.lo, one.hi, one.n) == (2.0, 2.0, 2.0, 1)
    with pytest.raises(ValueError, match="one cluster label per value"):
        cluster_bootstrap([1.0, 2.0], ["a"])
    with pytest.raises(ValueError, match="at least one value"):
        cluster_bootstrap([], [])
