"""SAELens's format: export folds the input scale into the weights, loading is exact, shipped dictionaries are
checked against the manifest, and bad folders fail with the file named."""

import json

import pytest
import torch

from saelib.core.artifacts import file_sha256
from saelib.dictionaries.sae import SAEConfig, TiedSAE, UntiedSAE
from saelib.dictionaries.sae.base import SAEMismatchError
from saelib.dictionaries.sae.saelens_format import UnsupportedSAEError, export_saelens, load_saelens, saelens_weights
from saelib.dictionaries.shipped import DictionaryIntegrityError, load_release


def _tied(scale=3.7):
    sae = TiedSAE(SAEConfig("tied", 12, 24, (1e-3,), "m", "blocks.0.hook_resid_post", scale), seed=1)
    with torch.no_grad():
        sae.encoder_bias.normal_(0, 0.3)
    return sae


def _untied(scale=0.25):
    sae = UntiedSAE(SAEConfig("untied", 12, 24, (2.0,), "m", "blocks.0.mlp.hook_post", scale), seed=2)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3)
        sae.b_dec.normal_(0, 1.0)
    return sae


def _saelens_forward(w, x, apply_b_dec):
    f = torch.relu((x - w["b_dec"] * apply_b_dec) @ w["W_enc"] + w["b_enc"])
    return f, f @ w["W_dec"] + w["b_dec"]


@pytest.mark.parametrize("make, apply_b_dec", [(_tied, False), (_untied, True)])
def test_export_folds_the_scale_and_loads_back_exactly(tmp_path, make, apply_b_dec):
    sae = make()
    x = torch.randn(50, 12) * 5
    codes, recon = sae.encode(x), sae.decode(sae.encode(x))
    f, r = _saelens_forward(saelens_weights(sae), x, apply_b_dec)  # SAELens's formula on raw activations
    torch.testing.assert_close(f, codes, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(r, recon, rtol=1e-5, atol=1e-4)
    export_saelens(sae, tmp_path / "d", "m")
    cfg = json.loads((tmp_path / "d" / "cfg.json").read_text())
    assert cfg["apply_b_dec_to_input"] is apply_b_dec and cfg["metadata"]["hook_name"] == sae.cfg.hook
    loaded = load_saelens(tmp_path / "d", model_name="m", hook=sae.cfg.hook, width=12)
    torch.testing.assert_close(loaded.decode(loaded.encode(x)), recon, rtol=1e-5, atol=1e-4)


def test_float16_storage_halves_the_file(tmp_path):
    sae = _tied()
    export_saelens(sae, tmp_path / "a", "m", dtype="float32")
    export_saelens(sae, tmp_path / "b", "m", dtype="float16")
    a, b = (tmp_path / n / "sae_weights.safetensors" for n in "ab")
    assert b.stat().st_size < 0.6 * a.stat().st_size
    x = torch.randn(20, 12)
    rel = load_saelens(tmp_path / "b").decode(load_saelens(tmp_path / "b").encode(x)) - sae.decode(sae.encode(x))
    assert rel.norm() / x.norm() < 1e-2


def test_bad_folders_are_named(tmp_path):
    export_saelens(_tied(), tmp_path / "d", "m")
    with pytest.raises(SAEMismatchError, match="hook"):
        load_saelens(tmp_path / "d", hook="blocks.5.hook_resid_post")
    with pytest.raises(SAEMismatchError, match="model"):
        load_saelens(tmp_path / "d", model_name="other-model")
    with pytest.raises(SAEMismatchError, match="width"):
        load_saelens(tmp_path / "d", width=64)
    cfg = json.loads((tmp_path / "d" / "cfg.json").read_text())
    (tmp_path / "d" / "cfg.json").write_text(json.dumps({**cfg, "architecture": "gated"}))
    with pytest.raises(UnsupportedSAEError, match="gated"):
        load_saelens(tmp_path / "d")
    (tmp_path / "d" / "cfg.json").write_text(json.dumps({**cfg, "d_sae": 99}))
    with pytest.raises(UnsupportedSAEError, match="d_sae=99"):
        load_saelens(tmp_path / "d")
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        load_saelens(tmp_path / "missing")


def _shipped(root):
    export_saelens(_tied(), root / "resid0-a1", "m")
    files = ("cfg.json", "sae_weights.safetensors")
    entry = {"name": "resid0-a1", "sha256": {f: file_sha256(root / "resid0-a1" / f) for f in files}}
    (root / "manifest.json").write_text(json.dumps({"dictionaries": [entry]}))


def test_shipped_dictionaries_are_checked_against_the_manifest(tmp_path):
    _shipped(tmp_path)
    assert load_release("resid0-a1", root=tmp_path).cfg.n_features == 24
    with pytest.raises(KeyError, match="resid0-a1"):
        load_release("resid9", root=tmp_path)
    weights = tmp_path / "resid0-a1" / "sae_weights.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-3] ^= 0xFF  # one flipped byte
    weights.write_bytes(bytes(blob))
    with pytest.raises(DictionaryIntegrityError, match="sae_weights.safetensors.*git checkout"):
        load_release("resid0-a1", root=tmp_path)
    weights.unlink()
    with pytest.raises(DictionaryIntegrityError, match="missing"):
        load_release("resid0-a1", root=tmp_path)
