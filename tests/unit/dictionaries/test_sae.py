"""SAE architectures, saving/loading, and the ground-truth recovery benchmark."""

import pytest
import torch

from saelib.dictionaries.metrics import max_cosines, mmcs
from saelib.dictionaries.sae import SAEConfig, TiedSAE, UntiedSAE, load_sae, save_sae
from saelib.dictionaries.sae.base import SAEMismatchError
from saelib.dictionaries.synthetic import sparse_superposition
from saelib.dictionaries.train import fit_tensor


def perfect_tied(d: int) -> TiedSAE:
    """Rows +e_i and -e_i: ReLU(x) - ReLU(-x) = x, an exact reconstruction."""
    sae = TiedSAE(SAEConfig("tied", d, 2 * d, (0.1,)))
    with torch.no_grad():
        sae.weight.copy_(torch.cat([torch.eye(d), -torch.eye(d)])[None] * 3.0)  # norm is divided out
    return sae


def test_tied_matches_the_papers_formulas():
    sae = TiedSAE(SAEConfig("tied", 8, 16, (1e-3, 1e-2)), seed=1)
    x = torch.randn(5, 8)
    terms = sae.loss_terms(x)
    m_hat = sae.weight / sae.weight.norm(dim=-1, keepdim=True)
    for i, alpha in enumerate((1e-3, 1e-2)):
        c = torch.relu(x @ m_hat[i].T + sae.encoder_bias[i])
        x_hat = c @ m_hat[i]
        torch.testing.assert_close(terms["codes"][i], c)
        expected = (x_hat - x).pow(2).mean() + alpha * c.abs().sum(-1).mean()
        torch.testing.assert_close(terms["loss"][i], expected)
    torch.testing.assert_close(perfect_tied(8).forward(x)[0], x)


def test_ensemble_equals_members_trained_alone():
    ens = TiedSAE(SAEConfig("tied", 8, 16, (1e-3, 3e-2)), seed=2)
    singles = [ens.member(i) for i in range(2)]
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    fit_tensor(ens, x, epochs=3, batch_size=16, seed=5)
    for i, one in enumerate(singles):
        fit_tensor(one, x, epochs=3, batch_size=16, seed=5)
        torch.testing.assert_close(one.weight[0], ens.weight[i], rtol=1e-4, atol=1e-5)


def test_untied_keeps_unit_decoder_columns_and_bias_tied_to_input():
    sae = UntiedSAE(SAEConfig("untied", 8, 16, (0.01,)), seed=0)
    x = torch.randn(200, 8) + 5.0
    sae.init_decoder_bias(x)
    torch.testing.assert_close(sae.b_dec[0], x.mean(0))
    fit_tensor(sae, x, epochs=2, batch_size=32)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(1, 16))
    terms = sae.loss_terms(x)
    f = torch.relu((x - sae.b_dec[0]) @ sae.W_enc[0].T + sae.b_enc[0])
    torch.testing.assert_close(terms["codes"][0], f)


def test_save_load_roundtrip_and_validation(tmp_path):
    sae = TiedSAE(SAEConfig("tied", 8, 16, (1e-3,), model="m", hook="blocks.1.hook_resid_post"), seed=3)
    save_sae(sae, tmp_path / "s")
    back = load_sae(tmp_path / "s", model_name="m", hook="blocks.1.hook_resid_post", width=8)
    torch.testing.assert_close(back.weight, sae.weight)
    with pytest.raises(SAEMismatchError, match="width 576"):
        load_sae(tmp_path / "s", width=576)
    with pytest.raises(SAEMismatchError, match="hook"):
        load_sae(tmp_path / "s", hook="blocks.2.hook_resid_post")
    with pytest.raises(SAEMismatchError, match="model"):
        load_sae(tmp_path / "s", model_name="other-model")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        SAEConfig("tied", 8, 0, (1e-3,))
    with pytest.raises(ValueError):
        SAEConfig("tied", 8, 16, (float("nan"),))


def test_tied_sae_recovers_synthetic_ground_truth():
    """Sharkey et al.-style benchmark: 64 true directions in 32 dimensions, ~3 active per sample."""
    data = sparse_superposition(d=32, n_features=64, n_samples=20_000, mean_active=3.0, seed=0)
    sae = TiedSAE(SAEConfig("tied", 32, 64, (6e-3, 1e-2)), seed=0)
    fit_tensor(sae, data.x, epochs=20, batch_size=256, lr=3e-3)
    with torch.no_grad():
        scores = [mmcs(data.features, sae.dictionary()[i]) for i in range(2)]
    assert max(scores) >= 0.95, scores
    random_dict = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    assert mmcs(data.features, random_dict) < 0.6  # the bar is far above chance


def test_metrics_are_saved_beside_the_weights(tmp_path):
    from saelib.dictionaries.sae import attach_metrics

    sae = TiedSAE(SAEConfig("tied", 4, 8, (1e-3,), model="m", hook="h"))
    save_sae(sae, tmp_path)
    attach_metrics(tmp_path, [{"alpha": 1e-3, "l0": 3.0, "fvu": 0.2}])
    assert load_sae(tmp_path).cfg.extra["metrics"][0]["fvu"] == 0.2


def test_max_cosines_finds_each_rows_partner_whatever_its_norm_or_order():
    a = torch.eye(3)[:2] * torch.tensor([[2.0], [0.5]])  # two basis directions, not unit norm
    b = torch.stack([torch.tensor([0.0, 3.0, 0.0]), torch.tensor([1.0, 1.0, 0.0])])
    best = max_cosines(a, b)
    assert best.tolist() == pytest.approx([2**-0.5, 1.0])
    assert mmcs(a, b) == pytest.approx(float(best.mean()))


# --- one dictionary (SAELens's shapes) and the ensemble --------------------------------------------------------


def _encode1_as_before(sae, x):
    """What ``encode1`` computed before ``encode`` took SAELens's shapes: member 0 of the ensemble path."""
    return sae.encode_members(x.reshape(-1, x.shape[-1]))[0].reshape(*x.shape[:-1], -1)


def _decode1_as_before(sae, codes):
    return sae.decode_members(codes.reshape(1, -1, codes.shape[-1]))[0].reshape(*codes.shape[:-1], -1)


@pytest.mark.parametrize("name", ["resid14-tied-r2-a2p15e-03", "mlp14-untied-r2-a1p00e00"])
def test_a_loaded_dictionary_encodes_as_saelens_does_without_a_graph_unless_asked(name):
    from saelib.dictionaries.shipped import load_release

    sae = load_release(name, model_name="smollm2-135m-instruct")
    d, n = sae.cfg.d_in, sae.cfg.n_features
    assert sae.cfg.n_models == 1
    x = (torch.randn(2, 5, d, generator=torch.Generator().manual_seed(0)) * 3).requires_grad_()
    codes = sae.encode(x)
    recon = sae.decode(codes)
    assert codes.shape == (2, 5, n) and recon.shape == (2, 5, d)
    assert sae.encode(x[0]).shape == (5, n) and sae.encode(x[0, 0]).shape == (n,)
    assert not codes.requires_grad and not recon.requires_grad  # no graph although x and the weights require grad
    assert (codes > 0).any()
    # the same numbers as the one-member path of before (and the deprecated aliases, which keep the graph)
    assert torch.equal(codes, _encode1_as_before(sae, x).detach())
    assert torch.equal(recon, _decode1_as_before(sae, _encode1_as_before(sae, x)).detach())
    assert torch.equal(recon, sae.decode1(sae.encode1(x)).detach())
    # grad=True keeps the graph: gradients reach the input and the weights (attribution through the codes)
    kept = sae.encode(x, grad=True)
    assert kept.requires_grad and torch.equal(kept.detach(), codes)
    sae.decode(kept, grad=True).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in sae.parameters())
    with torch.no_grad():  # grad=True keeps the caller's autograd mode, it does not switch gradients on
        assert not sae.encode(x, grad=True).requires_grad
    features = torch.tensor([3, 0, n - 1])
    some = sae.encode_features(x, features)
    assert some.shape == (2, 5, 3) and not some.requires_grad
    torch.testing.assert_close(some, codes[..., features])
    assert sae.encode_features(x, features, grad=True).requires_grad
    torch.testing.assert_close(sae.encode1_features(x[0], features).detach(), codes[0][..., features])


def test_an_ensemble_is_encoded_member_by_member_and_refuses_the_one_dictionary_calls():
    ens = TiedSAE(SAEConfig("tied", 8, 16, (1e-3, 1e-2, 3e-2)), seed=4)
    x = torch.randn(5, 8)
    codes = ens.encode_members(x)
    assert codes.shape == (3, 5, 16) and ens.decode_members(codes).shape == (3, 5, 8)
    torch.testing.assert_close(ens(x), ens.decode_members(codes))
    for i in range(3):
        torch.testing.assert_close(ens.member(i).encode(x), codes[i].detach())
        torch.testing.assert_close(ens.member(i).decode(codes[i]), ens.decode_members(codes)[i].detach())
    for call in (
        lambda: ens.encode(x),
        lambda: ens.decode(codes[0]),
        lambda: ens.encode_features(x, torch.tensor([0])),
        lambda: ens.encode1(x),
    ):
        with pytest.raises(ValueError, match=r"ensemble of 3 members: pick one with \.member\(i\).*encode_members"):
            call()
