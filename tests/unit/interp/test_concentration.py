import numpy as np
import pytest

from saelib.interp.concentration import top_token_concentration


def test_token_detector_scores_one_and_a_spread_feature_scores_low():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 1000, size=(40, 16))
    tokens[::3, 5] = 7  # token 7 appears at 14 positions
    detector = (tokens == 7).astype(np.float32) * 3.0
    detector += (rng.random(tokens.shape) < 0.05) * 0.1  # weak activations elsewhere never reach its top
    spread = rng.random(tokens.shape).astype(np.float32)  # fires everywhere, no token preference
    rare = np.zeros(tokens.shape, np.float32)
    rare[0, 0] = 1.0
    c = top_token_concentration(np.stack([detector, spread, rare]), tokens, n_top=10)
    assert c[0] == 1.0 and c[1] <= 0.2 and np.isnan(c[2])


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="matching tokens"):
        top_token_concentration(np.zeros((2, 3, 4)), np.zeros((3, 5)))
