"""Features against the neuron basis (saelib.interp.neurons): the rank form of the AUC equals scikit-learn's, and a
feature copied from one neuron is found with AUC 1 while a feature spread over many neurons is not."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from saelib.interp import neurons as N


def test_auc_matrix_matches_sklearn_including_ties():
    rng = np.random.default_rng(0)
    neurons = np.round(rng.normal(size=(300, 4)), 1)  # rounded: ties exercised
    fires = rng.random((300, 3)) < [0.1, 0.5, 0.9]
    auc = N.auc_matrix(fires, N.neuron_ranks(neurons)).numpy()
    for i in range(3):
        for j in range(4):
            assert auc[i, j] == pytest.approx(roc_auc_score(fires[:, i], neurons[:, j]), abs=1e-5)


def test_best_neuron_finds_a_copied_neuron_and_misses_a_distributed_feature():
    rng = np.random.default_rng(1)
    neurons = rng.normal(size=(2000, 16)).astype(np.float32)
    codes = np.zeros((2000, 3), np.float32)
    codes[:, 0] = np.maximum(neurons[:, 5] - 1.0, 0)  # one neuron, thresholded
    codes[:, 1] = np.maximum(neurons @ rng.normal(size=16) / 4 - 1.0, 0)  # a direction across all neurons
    table = N.best_neuron(codes, -neurons)  # sign flipped: max(AUC, 1 - AUC) still finds it
    assert table.best_neuron[0] == 5 and table.best_auc[0] == pytest.approx(1.0)
    assert table.best_auc[1] < 0.85 and table.best_abs_corr[0] > table.best_abs_corr[1]
    assert np.isnan(table.best_auc[2])  # never fires
    assert N.invisible_fraction(table, 0.9) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same tokens"):
        N.best_neuron(codes[:10], neurons)


def test_matched_density_codes_fire_at_the_asked_density_and_reject_bad_densities():
    scores = np.random.default_rng(0).standard_normal((5000, 3)).astype(np.float32)
    codes = N.matched_density_codes(scores, np.array([0.01, 0.1, 0.5]))
    np.testing.assert_allclose((codes > 0).mean(0), [0.01, 0.1, 0.5], atol=0.002)
    assert (codes >= 0).all()
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        N.matched_density_codes(scores, np.array([0.0, 0.1, 0.5]))
    with pytest.raises(ValueError, match="one density per column"):
        N.matched_density_codes(scores, np.array([0.1]))


def test_direction_controls_neurons_come_out_visible_and_random_directions_invisible():
    rng = np.random.default_rng(1)
    neurons = np.maximum(rng.standard_normal((8000, 32)) @ rng.standard_normal((32, 128)) / 6, -0.2).astype(np.float32)
    densities = rng.uniform(0.01, 0.2, 60)
    random_codes, neuron_codes = N.direction_controls(neurons, densities, seed=0)
    random_table, neuron_table = N.best_neuron(random_codes, neurons), N.best_neuron(neuron_codes, neurons)
    np.testing.assert_allclose(random_table.density, densities, atol=0.003)
    assert (neuron_table.best_auc > 0.99).all()  # each control is a thresholded copy of one neuron
    assert (random_table.best_abs_corr < 0.5).mean() > 0.9
    assert (neuron_table.best_abs_corr < 0.5).mean() < 0.5
