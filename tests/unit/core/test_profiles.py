import pytest

from saelib.core.profiles import PROFILES, UnknownProfileError, get_profile
from saelib.dictionaries.shipped import release_manifest
from saelib.model.hooks import mlp_post, resid_post


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
        assert set(profile.erasure.layers) <= set(sweep.layers)  # notebook 04 reads notebook 01's stores


@pytest.mark.parametrize("name", ["dev", "default"])
def test_the_notebooks_release_sections_find_shipped_dictionaries_at_the_profiles_layers(name):
    """With DICTIONARIES="release" (the default) notebooks 01-06 load shipped dictionaries at the profile's layers:
    a layer the release lacks stops the notebook (the paper profile's extra layers need DICTIONARIES="profile")."""
    profile = get_profile(name)
    manifest = release_manifest()
    shipped = {(d["hook"], d["architecture"], d["ratio"]) for d in manifest["dictionaries"]}
    chosen = set(manifest["chosen"])
    sweep = profile.sae
    assert (mlp_post(sweep.mlp_layer), "untied", 2.0) in shipped  # notebooks 07 §5 and 06 §1
    assert resid_post(profile.monosemanticity.steer_layer) in chosen  # notebook 06 steering
    assert {resid_post(la) for la in profile.erasure.layers} <= chosen  # notebook 04
    assert {resid_post(la) for la in sweep.layers} <= chosen  # notebooks 02 and 05
    # notebook 03 patches n_layers consecutive sweep layers ending where the IO information arrives (the deepest
    # on this model): the release's R = 4 sweeps must cover them
    for layer in sweep.layers[-profile.ioi_patching.n_layers :]:
        assert (resid_post(layer), "tied", 4.0) in shipped
