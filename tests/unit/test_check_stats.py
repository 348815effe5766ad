import numpy as np
import pytest

from saelib.check import check, check_between
from saelib.stats import mean_se, proportion


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
    assert proportion([1, 1, 0, 0]).se == pytest.approx(0.25)
    with pytest.raises(ValueError):
        mean_se([])
