"""Case studies (saelib.interp.case_studies): proxy scores and interval tables on constructed activations, and the
model-side pieces on the tiny GPT-NeoX: partial forward, feature contributions, ablation and circuit edges checked
against an independent computation through the model's own hooks."""

import numpy as np
import pandas as pd
import pytest
import torch

from saelib.dictionaries.sae import SAEConfig, TiedSAE, UntiedSAE
from saelib.interp import case_studies as C
from saelib.model.forward import run_blocks
from saelib.model.hooks import resid_post
from saelib.model.loader import model_name


def test_proxies_read_the_token_text(default_tokenizer):
    ids = np.array([default_tokenizer.encode(t, add_special_tokens=False)[0] for t in ("'s", ")", " (", " the")])
    assert C.APOSTROPHE.mask(default_tokenizer, ids).tolist() == [True, False, False, False]
    assert C.CLOSING_PARENTHESIS.mask(default_tokenizer, ids).tolist() == [False, True, False, False]
    assert C.OPENING_PARENTHESIS.mask(default_tokenizer, ids[None]).shape == (1, 4)


def test_proxy_scores_pick_the_feature_that_matches():
    proxy = np.zeros(100, bool)
    proxy[::10] = True
    acts = np.zeros((100, 3), np.float16)
    acts[proxy, 0] = 2.0  # exact detector
    acts[:, 1] = 1.0  # dense: full recall, precision 0.1
    acts[proxy[:], 2] = 1.0
    acts[1, 2] = 3.0  # detector with one large false positive
    rows = np.ones(100, bool)
    scores = C.proxy_scores(acts, proxy, rows, top=5)
    assert C.best_feature(scores).feature == 0
    np.testing.assert_allclose(scores.loc[0, ["precision", "recall", "f1", "top_precision"]], [1, 1, 1, 1])
    np.testing.assert_allclose(scores.loc[1, ["precision", "recall", "density"]], [0.1, 1.0, 1.0])
    np.testing.assert_allclose(scores.loc[2, "precision"], 10 / 13)
    assert scores.loc[2, "top_precision"] == pytest.approx(0.8)
    rows[::10] = False  # every proxy row excluded: nothing to match
    with pytest.raises(ValueError, match="no row satisfies"):
        C.proxy_scores(acts, proxy, rows)


def test_interval_table_counts_precision_and_recall(default_tokenizer):
    col = np.array([0, 0.5, 1.5, 1.8, 3.9, 4.0], np.float32)
    proxy = np.array([0, 0, 1, 0, 1, 1], bool)
    ids = np.arange(6) + 100
    table = C.interval_table(col, proxy, ids, default_tokenizer, n_bins=4)
    assert table.tokens.tolist() == [1, 2, 0, 2]
    assert table.proxy.tolist() == [0, 1, 0, 2]
    assert table.precision[1] == pytest.approx(0.5) and np.isnan(table.precision[2])
    assert table.recall_above_lo.tolist() == pytest.approx([1.0, 1.0, 2 / 3, 2 / 3])
    assert table.precision_lo[3] <= 1.0 <= table.precision_hi[3]
    with pytest.raises(ValueError, match="never fires"):
        C.interval_table(np.zeros(3, np.float32), proxy[:3], ids[:3], default_tokenizer)


@pytest.mark.parametrize("cls", [TiedSAE, UntiedSAE])
def test_feature_directions_decompose_the_reconstruction(cls):
    sae = cls(SAEConfig(cls.__name__.lower()[:-3], 8, 16, (1e-3,), "m", "h", 0.7), seed=1)
    x = torch.randn(5, 8)
    codes = sae.encode(x)
    base = sae.decode(torch.zeros(1, 16))
    torch.testing.assert_close(sae.decode(codes), base + codes @ C.feature_directions(sae), atol=1e-5, rtol=1e-5)
    a, contrib = C.contribution(sae, x, 3)
    torch.testing.assert_close(contrib, a[:, None] * C.feature_directions(sae)[3])


@pytest.fixture(scope="module")
def setting(tiny_model):
    torch.manual_seed(0)
    tokens = torch.randint(5, 1000, (6, 12))
    d = tiny_model.cfg.d_model
    saes = {}
    for layer in (0, 1):
        hook = resid_post(layer)
        sae = TiedSAE(SAEConfig("tied", d, 2 * d, (1e-3,), model_name(tiny_model), hook, 1.0), seed=layer)
        with torch.no_grad():  # a positive bias: most features fire somewhere
            sae.encoder_bias.fill_(0.05)
        saes[layer] = sae
    return tokens, saes


def test_run_blocks_continues_the_model(tiny_model, setting):
    tokens, _ = setting
    res = C.residuals_at(tiny_model, tokens, [0, 1])
    torch.testing.assert_close(run_blocks(tiny_model, res[0], 0, 1), res[1], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="after_layer"):
        run_blocks(tiny_model, res[1], 1, 0)


def test_next_token_ablation_matches_the_model_hooks(tiny_model, setting):
    tokens, saes = setting
    hook, f = "blocks.0.hook_resid_post", None
    with torch.no_grad():
        codes = saes[0].encode(C.residuals_at(tiny_model, tokens, [0])[0])
    f = int((codes[:, :-1] > 0).float().mean((0, 1)).argmax())  # the feature that fires most
    keep = torch.ones(tokens.shape, dtype=torch.bool)
    keep[:, 0] = False
    result = C.next_token_ablation(tiny_model, saes[0], hook, tokens, f, keep, batch_size=4)
    fire = (codes[..., f] > 0) & keep
    fire[:, -1] = False
    assert len(result.next_token) == int(fire.sum()) == len(result.context)

    def ablate(act, hook=None):
        _, contrib = C.contribution(saes[0], act, f)
        return torch.where(fire[..., None], act - contrib, act)

    with torch.no_grad():
        clean = tiny_model(tokens).float().log_softmax(-1)
        edited = tiny_model.run_with_hooks(tokens, fwd_hooks=[(hook, ablate)]).float().log_softmax(-1)
    nxt = torch.cat([tokens[:, 1:], tokens[:, -1:]], 1)[..., None]
    expected = (edited - clean).gather(-1, nxt)[..., 0][fire]
    np.testing.assert_allclose(result.next_token, expected.numpy(), atol=1e-4)
    summary = result.summary()
    assert summary["delta_lo"] <= summary["delta_next_token"] <= summary["delta_hi"]
    with pytest.raises(ValueError, match="never fires"):
        C.next_token_ablation(tiny_model, saes[0], hook, tokens, f, torch.zeros_like(keep))


def test_upstream_effects_are_exact_ablations(tiny_model, setting):
    tokens, saes = setting
    res = C.residuals_at(tiny_model, tokens, [0, 1])
    with torch.no_grad():
        target_codes = saes[1].encode(res[1])
    t = int((target_codes > 0).float().mean((0, 1)).argmax())
    edges = C.upstream_effects(tiny_model, saes, tokens, (1, t), 0, n_candidates=4)
    assert len(edges) == 4 and list(edges.effect) == sorted(edges.effect)
    e = edges.iloc[0]
    directions = C.feature_directions(saes[0])
    with torch.no_grad():
        codes = saes[0].encode(res[0])
        after = saes[1].encode(
            run_blocks(tiny_model, res[0] - codes[..., int(e.source), None] * directions[int(e.source)], 0, 1)
        )[..., t]
    fire = target_codes[..., t] > 0
    base = (target_codes[..., t] * fire).sum(1)
    ratio = ((after - target_codes[..., t]) * fire).sum(1)[base > 0] / base[base > 0]
    expected = float(ratio.mean())
    assert e.effect == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="must come before"):
        C.upstream_effects(tiny_model, saes, tokens, (0, t), 1)
    circuit = C.trace_circuit(tiny_model, saes, tokens, (1, t), [0, 1], n_candidates=4, branch=1)
    assert isinstance(circuit.edges, pd.DataFrame) and (circuit.edges.effect_hi < 0).all() and len(circuit.edges) <= 1


def test_upstream_effects_compare_candidates_with_random_cofiring_controls(tiny_model, setting):
    tokens, saes = setting
    res = C.residuals_at(tiny_model, tokens, [0, 1])
    with torch.no_grad():
        t = int((saes[1].encode(res[1]) > 0).float().mean((0, 1)).argmax())
    found = C.upstream_effects(tiny_model, saes, tokens, (1, t), 0, n_candidates=2, n_controls=2, seed=3)
    assert sorted(found.role) == ["candidate", "candidate", "control"]
    baseline = C.upstream_effects(tiny_model, saes, tokens, (1, t), 0, n_candidates=2, n_controls=2, seed=3)
    pd.testing.assert_frame_equal(found, baseline)  # the draw is seeded
    controls = set(found.source[found.role == "control"])
    assert not controls & set(found.source[found.role == "candidate"])
    for row in found.itertuples():  # paired: a candidate minus the strongest control, per context
        assert row.beyond_control_lo <= row.beyond_control <= row.beyond_control_hi
    # more controls than there are co-firing features: a clear error, not a silent smaller baseline
    with pytest.raises(ValueError, match="needed for the controls"):
        C.upstream_effects(tiny_model, saes, tokens, (1, t), 0, n_candidates=2, n_controls=10_000)
    trace = C.trace_circuit(tiny_model, saes, tokens, (1, t), [0, 1], n_candidates=2, branch=1, n_controls=2)
    assert len(trace.controls) == 1 and trace.controls.role.eq("control").all()
    assert (trace.edges.beyond_control_hi < 0).all() if len(trace.edges) else True


def test_upstream_effects_split_into_direct_and_mediated_paths(tiny_model, setting):
    tokens, saes = setting
    res = C.residuals_at(tiny_model, tokens, [0, 1])
    with torch.no_grad():
        target_codes = saes[1].encode(res[1])
        codes = saes[0].encode(res[0])
    t = int((target_codes > 0).float().mean((0, 1)).argmax())
    f = int((codes > 0).float().mean((0, 1)).argmax())
    groups = np.array([0, 0, 1, 1, 2, 2])  # two contexts per document
    edges = C.upstream_effects(tiny_model, saes, tokens, (1, t), 0, keep=None, groups=groups, features=[f])
    assert edges.source.tolist() == [f]
    e = edges.iloc[0]
    removed = codes[..., f, None] * C.feature_directions(saes[0])[f]
    with torch.no_grad():  # the direct path: the contribution taken out of layer 1's residual, no block rerun
        direct_after = saes[1].encode(res[1] - removed)[..., t]
    fire = target_codes[..., t] > 0
    base = (target_codes[..., t] * fire).sum(1)
    ratio = ((direct_after - target_codes[..., t]) * fire).sum(1)[base > 0] / base[base > 0]
    assert e.direct == pytest.approx(float(ratio.mean()), abs=1e-4)
    assert e.mediated == pytest.approx(e.effect - e.direct, abs=1e-6)
    for name in ("effect", "direct", "mediated"):
        assert e[f"{name}_lo"] <= e[name] <= e[f"{name}_hi"]


def test_ablation_watches_a_token_and_clusters_its_intervals(tiny_model, setting):
    tokens, saes = setting
    hook = "blocks.0.hook_resid_post"
    with torch.no_grad():
        codes = saes[0].encode(C.residuals_at(tiny_model, tokens, [0])[0])
    f = int((codes[:, :-1] > 0).float().mean((0, 1)).argmax())
    keep = torch.ones(tokens.shape, dtype=torch.bool)
    watch = int(tokens[0, 1])
    result = C.next_token_ablation(tiny_model, saes[0], hook, tokens, f, keep, batch_size=4, watch=watch)
    fire = (codes[..., f] > 0) & keep
    fire[:, -1] = False
    assert len(result.watched) == len(result.control_watched) == len(result.position) == int(fire.sum())
    rows = torch.nonzero(fire)
    assert result.context.tolist() == rows[:, 0].tolist() and result.position.tolist() == rows[:, 1].tolist()
    at_next = (result.context == 0) & (result.position == 0)  # where the watched token is the next token
    np.testing.assert_allclose(result.watched[at_next], result.next_token[at_next], atol=1e-6)
    documents = result.context // 2
    summary = result.summary(clusters=documents)
    assert summary["clusters"] == len(np.unique(documents))
    assert summary["watch_minus_control_lo"] <= summary["watch_minus_control"] <= summary["watch_minus_control_hi"]
    assert summary["watch_minus_control"] == pytest.approx(float((result.watched - result.control_watched).mean()))
    assert "watch" not in C.next_token_ablation(tiny_model, saes[0], hook, tokens, f, keep, batch_size=4).summary()


def test_documents_of_labels_each_position_across_boundaries_and_sources():
    lengths = [np.array([3, 5]), np.array([4, 4])]  # source 0: documents 0-2, 3-7; source 1: 0-3, 4-7
    docs = C.documents_of(np.array([0, 1, 0]), np.array([0, 2, 4]), lengths, context_length=4)
    assert docs.tolist() == [[0, 0, 0, 1], [2, 2, 3, 3], [1, 1, 1, 1]]
    with pytest.raises(ValueError, match="outside"):
        C.documents_of(np.array([0]), np.array([6]), lengths, context_length=4)


def test_split_documents_keeps_each_document_on_one_side():
    documents = np.repeat(np.arange(10), 7)
    selection = C.split_documents(documents, seed=3)
    assert len(np.unique(documents[selection])) == 5
    assert not set(documents[selection]) & set(documents[~selection])
    assert (C.split_documents(documents, seed=3) == selection).all()


def test_proxy_f1_bootstrap_matches_proxy_scores_and_pairs_differences():
    rng = np.random.default_rng(0)
    n = 400
    documents = np.repeat(np.arange(40), 10)
    proxy = rng.random(n) < 0.2
    exact = proxy.astype(np.float32) * 2.0
    noisy = np.where(rng.random(n) < 0.7, exact, rng.random(n)).astype(np.float32)
    dense = np.ones(n, np.float32)
    boot = C.proxy_f1_bootstrap({"exact": exact, "noisy": noisy, "dense": dense}, proxy, documents, n_boot=300)
    scores = C.proxy_scores(np.stack([exact, noisy, dense], 1), proxy, np.ones(n, bool))
    np.testing.assert_allclose(boot.point, scores.f1.to_numpy(), atol=1e-6)
    exact_est = boot.estimate("exact")
    assert exact_est.mean == exact_est.lo == exact_est.hi == 1.0 and exact_est.n == 40
    diff = boot.difference("exact", "noisy")
    assert diff.mean == pytest.approx(1.0 - boot.point[1]) and diff.lo > 0
    noisy_est = boot.estimate("noisy")
    assert noisy_est.lo < noisy_est.mean < noisy_est.hi and noisy_est.kind == "cluster bootstrap"
    one_doc = C.proxy_f1_bootstrap({"noisy": noisy}, proxy, np.zeros(n), n_boot=50).estimate("noisy")
    assert one_doc.lo == pytest.approx(one_doc.hi)  # a single document cannot estimate the spread
    with pytest.raises(ValueError, match="non-negative"):
        C.proxy_f1_bootstrap({"signed": noisy - 0.5}, proxy, documents)


def test_projection_f1_scores_both_signs_of_each_direction():
    from saelib.baselines.directions import fit_pca

    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 6)).astype(np.float32)
    proxy = rng.random(60) < 0.3
    x[proxy, 2] -= 3.0  # the negative side of coordinate 2 marks the proxy
    pca = fit_pca(torch.from_numpy(x))
    half = pca.n_features // 2
    f1 = C.projection_f1(pca.directions[:half], pca.center, x, proxy, batch=16)
    acts = pca.encode(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(f1, C.proxy_scores(acts, proxy, np.ones(60, bool)).f1.to_numpy(), atol=1e-5)
    neuron = C.projection_f1(torch.eye(6), torch.zeros(6), x, proxy)
    assert int(np.argmax(neuron)) == 6 + 2  # coordinate 2, negative sign
    with pytest.raises(ValueError, match="no row"):
        C.projection_f1(torch.eye(6), torch.zeros(6), x, np.zeros(60, bool))
