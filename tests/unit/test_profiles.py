import pytest

from saelib.core.profiles import PROFILES, UnknownProfileError, get_profile


def test_known_profiles():
    assert {"dev", "default", "paper"} <= set(PROFILES)
    assert get_profile("paper").harvest_tokens == 10 * 2_097_152  # the paper's ~21M activations per layer
    assert get_profile("dev").harvest_tokens < get_profile("default").harvest_tokens


def test_unknown_profile_lists_valid_names():
    with pytest.raises(UnknownProfileError, match="Valid profiles: default, dev, paper"):
        get_profile("huge")


def test_every_profile_has_a_consistent_sae_sweep():
    for profile in PROFILES.values():
        sweep = profile.sae
        assert sweep is not None and set(sweep.ratio_sweep_alphas) <= set(sweep.alphas)
        assert sweep.ratio_sweep_layer in sweep.layers
