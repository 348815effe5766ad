"""TopK, BatchTopK and JumpReLU SAEs: their activation rules, sparse decoding, the AuxK and straight-through
gradients, training on a store, the SAELens round trip (sae_lens itself loads what saelib writes), bad folders and
settings, and the synthetic ground truth that ranks architectures."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from saelib.activations.harvest import harvest
from saelib.dictionaries.sae import BatchTopKSAE, JumpReLUSAE, SAEConfig, TiedSAE, TopKSAE, UntiedSAE
from saelib.dictionaries.sae.saelens_format import (
    SAELENS_ARCHITECTURE,
    UnsupportedSAEError,
    export_saelens,
    load_saelens,
)
from saelib.dictionaries.sae.topk import sparse_decode, topk_codes
from saelib.dictionaries.synthetic import GroundTruthConfig, compare_architectures, ground_truth, recovery_scores
from saelib.dictionaries.train import TrainConfig, train_saes
from saelib.text.corpus import PackedContexts

HOOK = "blocks.1.hook_resid_post"


def _sae(cls, arch, setting, d=12, n=48, scale=2.5, seed=3):
    sae = cls(SAEConfig(arch, d, n, (setting,), "m", HOOK, scale), seed=seed)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3)
        sae.b_dec.normal_(0, 0.5)
    return sae


def test_topk_keeps_k_latents_per_row_and_sparse_decoding_equals_dense():
    sae = _sae(TopKSAE, "topk", 5)
    x = torch.randn(64, 12)
    codes = sae.encode(x)
    assert ((codes > 0).sum(-1) <= 5).all() and (codes > 0).sum(-1).float().mean() > 4
    pre = torch.randn(64, 48)
    sparse = topk_codes(pre, 5)
    w_dec = torch.randn(12, 48, requires_grad=True)
    dense = sparse.dense(48) @ w_dec.T
    torch.testing.assert_close(sparse_decode(sparse, w_dec), dense)
    (g_sparse,) = torch.autograd.grad(sparse_decode(sparse, w_dec).pow(2).sum(), w_dec)
    (g_dense,) = torch.autograd.grad(dense.pow(2).sum(), w_dec)
    torch.testing.assert_close(g_sparse, g_dense)


def test_sparse_training_step_gives_the_dense_gradients():
    sae = _sae(TopKSAE, "topk", 5, scale=1.0)
    x = torch.randn(64, 12)
    sae.zero_grad()
    sae.loss_terms(x)["loss"].sum().backward()
    sparse = {name: p.grad.clone() for name, p in sae.named_parameters()}
    params = {name: p.detach()[0].clone().requires_grad_() for name, p in sae.named_parameters()}
    pre = (x - params["b_dec"]) @ params["W_enc"].T + params["b_enc"]
    values, latents = torch.relu(pre).topk(5, dim=-1)
    codes = torch.zeros_like(pre).scatter(1, latents, values)
    x_hat = codes @ params["W_dec"].T + params["b_dec"]
    (x_hat - x).pow(2).sum(-1).mean().backward()
    for name, p in params.items():
        torch.testing.assert_close(sparse[name][0], p.grad, rtol=1e-4, atol=1e-5)


def test_auxk_loss_reaches_only_dead_latents():
    sae = _sae(TopKSAE, "topk", 3)
    x = torch.randn(32, 12)
    assert float(sae.loss_terms(x)["aux"][0]) == 0.0  # nothing dead yet
    sae.rows_since_fired[0, :10] = sae.cfg.dead_after_tokens  # latents 0-9 dead
    terms = sae.loss_terms(x)
    assert float(terms["aux"][0].detach()) > 0
    sae.zero_grad()
    terms["aux"].sum().backward()
    grad = sae.W_enc.grad[0].abs().sum(-1)
    assert (grad[:10] > 0).any() and (grad[10:] == 0).all()


def test_batchtopk_keeps_k_per_row_on_average_and_infers_with_its_threshold():
    sae = _sae(BatchTopKSAE, "batchtopk", 4)
    x = torch.randn(256, 12)
    terms = sae.loss_terms(x)
    assert (terms["codes"][0] > 0).sum() == 4 * 256  # k·B over the batch, not k per row
    assert (terms["codes"][0] > 0).sum(-1).float().std() > 0
    theta = float(sae.threshold[0])
    assert theta > 0  # the first batch sets the threshold to its smallest kept value
    codes = sae.encode(x)
    assert ((codes == 0) | (codes > theta)).all()
    assert abs(float((codes > 0).sum(-1).float().mean()) - 4) < 1.5


def test_jumprelu_threshold_gradient_is_the_straight_through_estimate():
    sae = _sae(JumpReLUSAE, "jumprelu", 4.0, scale=1.0)
    x = torch.randn(128, 12)
    with torch.no_grad():
        pre = (x - sae.b_dec[0]) @ sae.W_enc[0].T + sae.b_enc[0]
    eps, theta = sae.cfg.bandwidth, sae.threshold[0].detach()
    near = ((pre - theta).abs() < eps / 2).float() / eps
    sae.zero_grad()
    terms = sae.loss_terms(x)
    l0 = (pre > theta).float().sum(-1).mean()
    # d penalty / d theta via the step's pseudo-derivative only (the reconstruction part is checked by autograd)
    sae.zero_grad()
    penalty = terms["loss"][0] - terms["mse"][0]
    penalty.backward()
    expected = 2 * (l0 / 4.0 - 1) / 4.0 * -(near.sum(0) / len(x))
    torch.testing.assert_close(sae.threshold.grad[0], expected, rtol=1e-4, atol=1e-6)


@pytest.fixture
def store(tiny_model):
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 1000, size=(40, 16))
    ctx = PackedContexts(tokens, np.zeros(40, int), np.arange(40) * 16, ("toy",), {"toy": 1.0})
    return harvest(tiny_model, [HOOK], ctx, corpus_name="toy", batch_size=8, dtype="float32", progress=False)


@pytest.mark.parametrize("arch, settings", [("topk", (2.0, 4.0)), ("batchtopk", (4.0,)), ("jumprelu", (8.0,))])
def test_every_architecture_trains_on_a_store_and_resumes_from_its_cache(store, arch, settings):
    cfg = TrainConfig(HOOK, architecture=arch, ratios=(2.0,), alphas=settings, batch_size=64, epochs=2, lr=3e-3)
    result = train_saes(store, cfg, progress=False)
    sae = result.saes[2.0]
    assert type(sae).__name__.lower().startswith(arch.replace("batchtopk", "batchtopk"))
    again = train_saes(store, cfg, progress=False)
    for name, value in sae.state_dict().items():
        torch.testing.assert_close(again.saes[2.0].state_dict()[name], value)
    if arch == "topk":
        x = torch.randn(20, store.width(HOOK))
        assert ((sae.member(0).encode(x) > 0).sum(-1) <= 2).all()


def test_bad_settings_name_the_fix():
    with pytest.raises(ValueError, match="k must be a whole number.*wider dictionary"):
        SAEConfig("topk", 12, 24, (32.0,))
    with pytest.raises(ValueError, match="whole numbers of active latents"):
        TrainConfig(HOOK, architecture="topk", alphas=(2.5,))
    with pytest.raises(ValueError, match="own sparsity mechanism"):
        TrainConfig(HOOK, architecture="jumprelu", alphas=(8.0,), resample=True)
    with pytest.raises(ValueError, match="resample=True needs architecture='untied'"):
        TrainConfig(HOOK, alphas=(1e-3,), resample=True)  # tied: resampling would crash at the first dead feature
    with pytest.raises(ValueError, match="architecture must be one of"):
        SAEConfig("gated", 12, 24, (1.0,))


# --- SAELens round trip ---------------------------------------------------------------------------------------


def _trained_batchtopk():
    sae = _sae(BatchTopKSAE, "batchtopk", 4)
    sae.loss_terms(torch.randn(256, 12) * 3)  # sets the inference threshold
    return sae


def _tied():
    sae = TiedSAE(SAEConfig("tied", 12, 48, (1e-3,), "m", HOOK, 2.5), seed=3)
    with torch.no_grad():
        sae.encoder_bias.normal_(0, 0.3)
    return sae


MAKERS = {
    "tied": _tied,
    "untied": lambda: _sae(UntiedSAE, "untied", 2.0),
    "topk": lambda: _sae(TopKSAE, "topk", 5),
    "batchtopk": _trained_batchtopk,
    "jumprelu": lambda: _sae(JumpReLUSAE, "jumprelu", 6.0),
}


@pytest.mark.parametrize("arch", sorted(MAKERS))
def test_saelens_loads_what_saelib_writes_and_back(tmp_path, arch):
    from sae_lens import SAE

    sae = MAKERS[arch]()
    x = torch.randn(40, 12) * 3
    codes = sae.encode(x)  # SAELens's shapes, [batch, d_sae], and no graph
    recon = sae.decode(codes)
    assert codes.shape == (40, 48) and recon.shape == (40, 12) and not codes.requires_grad
    export_saelens(sae, tmp_path / arch, "m")
    cfg = json.loads((tmp_path / arch / "cfg.json").read_text())
    assert cfg["architecture"] == SAELENS_ARCHITECTURE[arch]
    if arch == "batchtopk":
        assert cfg["metadata"]["training_architecture"] == "batchtopk"
    theirs = SAE.load_from_disk(str(tmp_path / arch), device="cpu")
    ours = load_saelens(tmp_path / arch, model_name="m", hook=HOOK, width=12)
    x3 = x.reshape(4, 10, 12)  # leading axes as SAELens takes them
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x), codes, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(theirs.decode(theirs.encode(x)), recon, rtol=1e-5, atol=1e-4)
        for xs in (x, x3):  # the loaded dictionary's encode and decode are SAELens's
            torch.testing.assert_close(ours.encode(xs), theirs.encode(xs), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(
                ours.decode(ours.encode(xs)), theirs.decode(theirs.encode(xs)), rtol=1e-5, atol=1e-4
            )
    torch.testing.assert_close(ours.decode(ours.encode(x)), recon, rtol=1e-5, atol=1e-4)
    theirs.save_model(str(tmp_path / "resaved"))  # and a folder SAELens itself wrote loads in saelib
    again = load_saelens(tmp_path / "resaved")
    with torch.no_grad():
        torch.testing.assert_close(again.decode(again.encode(x)), recon, rtol=1e-5, atol=1e-4)


def _rewrite(folder, **changes):
    cfg = json.loads((folder / "cfg.json").read_text())
    (folder / "cfg.json").write_text(json.dumps({**cfg, **changes}))


def test_bad_saelens_folders_name_the_file_and_the_field(tmp_path):
    d = tmp_path / "d"
    export_saelens(_sae(TopKSAE, "topk", 5), d, "m")
    good = (d / "cfg.json").read_text()
    cases = [
        ({"architecture": "gated"}, "architecture 'gated' is not supported"),
        ({"k": 99}, "'k' = 99 is larger than d_sae"),
        ({"d_in": 16.9}, "'d_in' must be a positive whole number"),
        ({"apply_b_dec_to_input": "false"}, "must be true or false"),
        ({"metadata": "x"}, "'metadata' must be a JSON object"),
        ({"rescale_acts_by_decoder_norm": True}, "fold the decoder norms"),
    ]
    for change, message in cases:
        (d / "cfg.json").write_text(good)
        _rewrite(d, **change)
        with pytest.raises(UnsupportedSAEError, match=message) as err:
            load_saelens(d)
        assert "cfg.json" in str(err.value)
    for text, message in [("not json", "not valid JSON"), ("[1, 2]", "JSON list"), ("[" * 100_000, "nested|JSON")]:
        (d / "cfg.json").write_text(text)
        with pytest.raises(UnsupportedSAEError, match=message):
            load_saelens(d)
    raw = json.loads(good)
    del raw["d_in"]
    (d / "cfg.json").write_text(json.dumps(raw))
    with pytest.raises(UnsupportedSAEError, match="'d_in' is missing"):
        load_saelens(d)
    (d / "cfg.json").write_text(good)
    weights = load_file(str(d / "sae_weights.safetensors"))
    save_file({**weights, "threshold": torch.zeros(48)}, str(d / "sae_weights.safetensors"))
    with pytest.raises(UnsupportedSAEError, match="unexpected tensors \\['threshold'\\].*jumprelu"):
        load_saelens(d)
    save_file({**weights, "W_dec": weights["W_dec"].clone().fill_(float("nan"))}, str(d / "sae_weights.safetensors"))
    with pytest.raises(UnsupportedSAEError, match="NaN or infinite"):
        load_saelens(d)
    save_file(weights, str(d / "sae_weights.safetensors"))
    _rewrite(d, architecture="jumprelu")
    with pytest.raises(UnsupportedSAEError, match="threshold"):  # a JumpReLU without its threshold
        load_saelens(d)


# --- synthetic ground truth ------------------------------------------------------------------------------------

SMALL = GroundTruthConfig(d=32, n_features=128, mean_active=4, n_parents=8, children_per_parent=2)


def test_ground_truth_has_the_stated_sparsity_and_hierarchy():
    truth = ground_truth(SMALL)
    _, codes = truth.sample(20_000, seed=1)
    on = codes > 0
    assert abs(float(on.sum(-1).float().mean()) - 4) < 0.3
    child = torch.nonzero(truth.parent >= 0).flatten()
    assert not (on[:, child] & ~on[:, truth.parent[child]]).any()  # a child never fires without its parent


def test_topk_recovers_the_known_features_and_an_untrained_dictionary_does_not():
    """Regression bound: trained TopK at k = the data's L0 reaches MCC 0.87 here; a dictionary left at its
    initialisation (what a trainer that never updates gives) scores 0.46. The bound 0.75 sits between."""
    truth = ground_truth(SMALL)
    (result,) = compare_architectures(truth, target_l0=4, n_train=16_384, architectures=("topk",))
    assert result.scores.mcc > 0.75 and result.scores.l0 == pytest.approx(4, abs=0.3)
    x, codes = truth.sample(8192, seed=2)
    untrained = recovery_scores(TopKSAE(SAEConfig("topk", 32, 128, (4.0,))), truth, x, codes)
    assert untrained.mcc < 0.75


def test_a_config_prints_on_one_line_without_its_training_log():
    cfg = SAEConfig("topk", 12, 48, (5.0,), "m", HOOK, 2.0, {"curve": list(range(170)), "seed": 0})
    text = repr(cfg)
    assert "\n" not in text and "169" not in text and "extra keys=['curve', 'seed']" in text and "topk" in text
