"""The shipped release dictionaries: every one loads in SAELens (``sae_lens.SAE.load_from_disk``) and in saelib,
and both reconstruct real activations of the default model identically; the manifest's metrics are consistent."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from saelib.activations.harvest import corpus_for_model
from saelib.dictionaries.release import DICTIONARIES_DIR
from saelib.dictionaries.shipped import load_release, release_manifest
from saelib.model.loader import model_weights_sha256, stop_layer
from saelib.text.corpus import pack_contexts

pytestmark = pytest.mark.integration

MANIFEST = release_manifest()
NAMES = [d["name"] for d in MANIFEST["dictionaries"]]


def test_the_release_is_shipped_and_small():
    assert NAMES, "dictionaries/manifest.json lists no dictionary"
    size = sum(p.stat().st_size for p in DICTIONARIES_DIR.rglob("*") if p.is_file())
    assert size < 200 * 2**20  # the cap export_release enforces (max_bytes): dictionaries/ stays under 200 MiB in git
    assert all(d["train_rows"] >= 2_000_000 for d in MANIFEST["dictionaries"])


@pytest.fixture(scope="module")
def activations(default_model):
    """Real activations at every shipped hook: 4 held-out contexts of 128 tokens, position 0 dropped."""
    hooks = sorted({d["hook"] for d in MANIFEST["dictionaries"]})
    ctx = pack_contexts(corpus_for_model(default_model), "heldout", 128, 4, seed=99)
    with torch.inference_mode():
        _, cache = default_model.run_with_cache(
            torch.from_numpy(ctx.tokens), names_filter=hooks, stop_at_layer=stop_layer(hooks)
        )
    return {h: cache[h][:, 1:].reshape(-1, cache[h].shape[-1]).clone() for h in hooks}


def test_shipped_for_this_model(default_model):
    assert MANIFEST["model"]["weights_sha256"] == model_weights_sha256(default_model)


@pytest.mark.parametrize("name", NAMES)
def test_saelens_and_saelib_reconstruct_alike(name, activations, default_model):
    from sae_lens import SAE

    entry = next(d for d in MANIFEST["dictionaries"] if d["name"] == name)
    ours = load_release(name, model_name=MANIFEST["model"]["name"], hook=entry["hook"])
    theirs = SAE.load_from_disk(str(DICTIONARIES_DIR / name), device="cpu")
    assert theirs.cfg.metadata.hook_name == entry["hook"]
    x = activations[entry["hook"]]
    norms = x.norm(dim=-1)
    x = x[norms < 20 * norms.median()]  # the rows the dictionaries were trained on (massive activations excluded)
    with torch.no_grad():
        mine = ours.decode(ours.encode(x))
        lens = theirs.decode(theirs.encode(x))
    rel = ((lens - mine).norm() / mine.norm()).item()
    assert rel <= 1e-4, f"{name}: SAELens and saelib reconstructions differ by {rel:.2e} (relative)"
    fvu = ((x - mine).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()
    assert fvu < 1.0  # a dictionary that reconstructs something, not a folder of zeros


def test_release_sweep_loads_a_layer_and_refuses_a_missing_one():
    from saelib.dictionaries.shipped import release_sweep

    groups = Counter((d["hook"], d["ratio"]) for d in MANIFEST["dictionaries"] if d["architecture"] == "tied")
    (hook, ratio), members = groups.most_common(1)[0]  # a shipped sweep (the R = 4 IOI layers)
    sweep = release_sweep(hook, ratio=ratio)
    assert list(sweep) == sorted(sweep) and len(sweep) == members >= 2
    assert all(s.cfg.hook == hook and s.cfg.alphas[0] == pytest.approx(a) for a, s in sweep.items())
    with pytest.raises(KeyError, match="DICTIONARIES='profile'"):
        release_sweep("blocks.5.hook_resid_post", ratio=2.0)
