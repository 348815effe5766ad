import pytest
import torch

from saelib.core.paths import artifacts_dir
from saelib.dictionaries import shipped as dictionaries
from saelib.dictionaries.sae import SAEConfig, TiedSAE, save_sae


def rows():
    return [{"ratio": 2.0, "alpha": a, "ce_recovered": ce} for a, ce in [(1e-3, 0.95), (3e-3, 0.85), (1e-2, 0.5)]]


def test_choose_the_sparsest_that_recovers_enough():
    assert dictionaries.choose(rows(), 2.0, 0.8)["alpha"] == 3e-3
    assert dictionaries.choose(rows(), 2.0, 0.99)["alpha"] == 1e-3  # none good enough: the best one
    with pytest.raises(ValueError, match="ratios present"):
        dictionaries.choose(rows(), 4.0)


def test_record_and_load_chosen_member():
    hook = "blocks.3.hook_resid_post"
    ens = TiedSAE(SAEConfig("tied", 8, 16, (1e-3, 3e-3), model="m", hook=hook), seed=0)
    folder = artifacts_dir() / "saes" / "x" / "ratio2"
    save_sae(ens, folder)
    with pytest.raises(FileNotFoundError, match="run notebook 01"):
        dictionaries.load_chosen("default", hook)
    dictionaries.record("default", hook, folder, {"alpha": 3e-3, "ratio": 2.0})
    sae = dictionaries.load_chosen("default", hook, model_name="m")
    torch.testing.assert_close(sae.weight[0], ens.weight[1])
    with pytest.raises(KeyError, match="no dictionary chosen"):
        dictionaries.load_chosen("default", "blocks.4.hook_resid_post")
