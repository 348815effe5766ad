"""Training on an activation store: determinism, resume, divergence, config changes, bad input, resampling,
and the metrics on cases with known answers."""

import numpy as np
import pytest
import torch

import saelib.core.precision as precision_mod
import saelib.dictionaries.train as train_mod
from saelib.activations.harvest import harvest
from saelib.core.precision import bfloat16_speedup, pick_precision
from saelib.dictionaries.metrics import ce_loss_recovered, mmcs, reconstruction_metrics, reconstruction_sums
from saelib.dictionaries.release import RELEASE_PRECISION, release_plan
from saelib.dictionaries.resampling import ResampleSchedule, resample_dead
from saelib.dictionaries.sae import SAEConfig, TiedSAE, UntiedSAE
from saelib.dictionaries.train import TrainConfig, TrainingDivergedError, row_mask, train_saes
from saelib.text.corpus import PackedContexts

HOOK = "blocks.1.hook_resid_post"


@pytest.fixture
def store(tiny_model):
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 1000, size=(40, 16))
    tokens[:, 7] = 3  # a "separator" column, excluded from training
    ctx = PackedContexts(tokens, np.zeros(40, int), np.arange(40) * 16, ("toy",), {"toy": 1.0})
    return harvest(
        tiny_model, [HOOK], ctx, corpus_name="toy", batch_size=8, dtype="float32", separator_id=3, progress=False
    )


def cfg(**kw):
    base = dict(hook=HOOK, ratios=(1.0, 2.0), alphas=(1e-3, 1e-2), batch_size=64, epochs=3, checkpoint_every=4)
    return TrainConfig(**{**base, **kw})


def test_row_mask_drops_position_zero_and_separators(store):
    mask = row_mask(store, cfg())
    assert mask.sum() == 40 * 14
    assert not mask[0] and not mask[7] and mask[1]


def test_training_is_deterministic_and_cached(store):
    a = train_saes(store, cfg(), progress=False)
    assert set(a.saes) == {1.0, 2.0} and a.saes[2.0].cfg.n_features == 128
    assert (a.directory / "ratio2" / "sae.safetensors").exists() and (a.directory / "ratio2" / "config.json").exists()
    assert a.saes[1.0].cfg.extra["train_rows"] == 560
    b = train_saes(store, cfg(), progress=False)  # cached
    torch.testing.assert_close(a.saes[1.0].weight, b.saes[1.0].weight)
    import shutil

    shutil.rmtree(a.directory)
    c = train_saes(store, cfg(), progress=False)  # retrained from scratch: bit-identical
    torch.testing.assert_close(a.saes[2.0].weight, c.saes[2.0].weight, rtol=0, atol=0)


def test_interrupted_training_resumes_to_the_same_result(store, monkeypatch):
    reference = train_saes(store, cfg(seed=7), progress=False)
    import shutil

    shutil.rmtree(reference.directory)
    real_step, calls = train_mod.train_step, {"n": 0}

    def dying(*args):
        calls["n"] += 1
        if calls["n"] == 2 * 7:  # step 7 of 2 ensembles: after the step-4 checkpoint
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(train_mod, "train_step", dying)
    with pytest.raises(KeyboardInterrupt):
        train_saes(store, cfg(seed=7), progress=False)
    assert (reference.directory / "checkpoint.pt").exists()
    monkeypatch.setattr(train_mod, "train_step", real_step)
    resumed = train_saes(store, cfg(seed=7), progress=False)
    torch.testing.assert_close(resumed.saes[1.0].weight, reference.saes[1.0].weight, rtol=0, atol=0)


def test_changed_config_never_resumes_another_run(store, monkeypatch):
    real = train_mod.train_step
    monkeypatch.setattr(train_mod, "train_step", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        train_saes(store, cfg(), progress=False)
    monkeypatch.setattr(train_mod, "train_step", real)  # not undo(): that would also drop the isolated artifacts folder
    other = train_saes(store, cfg(lr=3e-3), progress=False)
    assert other.directory != train_mod.keyed_dir("saes", "sae", {"train": cfg(), "store": store.dir.name})


def test_nan_loss_names_step_and_alpha_and_keeps_checkpoint(store, monkeypatch):
    real = TiedSAE.loss_from_params
    state = {"n": 0}

    def poisoned(self, x, params, alphas):
        state["n"] += 1
        terms = real(self, x, params, alphas)
        if state["n"] > 4 * 5 and torch.equal(alphas, torch.tensor([1e-2])):  # step 6 (2 ratios x 2 members), 1e-2
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(TiedSAE, "loss_from_params", poisoned)
    with pytest.raises(TrainingDivergedError, match=r"step 6 for alpha=\[0.01\]"):
        train_saes(store, cfg(), progress=False)
    directory = train_mod.keyed_dir("saes", "sae", {"train": cfg(), "store": store.dir.name})
    blob = torch.load(directory / "checkpoint.pt", weights_only=False)
    assert blob["state"]["step"] == 4 and all(torch.isfinite(v).all() for v in blob["saes"][1.0].values())


@pytest.mark.parametrize(
    "bad",
    [dict(alphas=(0.0,)), dict(alphas=(-1e-3,)), dict(ratios=(0,)), dict(ratios=(-2.0,)), dict(alphas=(float("inf"),))],
)
def test_non_positive_alpha_or_ratio_is_rejected(bad):
    with pytest.raises(ValueError, match="positive"):
        cfg(**bad)
    assert cfg(alphas=(0.0, 1e-3), allow_zero_alpha=True).alphas[0] == 0.0  # the paper's explicit control


@pytest.mark.parametrize("architecture", ["tied", "untied"])
def test_bfloat16_matmuls_train_to_the_float32_result_within_rounding(store, architecture):
    kw = dict(architecture=architecture, ratios=(2.0,), alphas=(1e-3,) if architecture == "tied" else (0.05,))
    exact = train_saes(store, cfg(**kw), progress=False)
    fast = train_saes(store, cfg(**kw, precision="bfloat16"), progress=False)
    assert fast.directory != exact.directory
    x = torch.from_numpy(np.array(store.activations(HOOK), dtype=np.float32))
    fvu = {}
    for name, res in (("exact", exact), ("fast", fast)):
        sae = res.saes[2.0]
        for p in sae.parameters():
            assert p.dtype == torch.float32  # only the matmuls ran in bfloat16
        with torch.no_grad():
            fvu[name] = float(((sae(x)[0] - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())
    differ = [(a - b).abs().max() for a, b in zip(exact.saes[2.0].parameters(), fast.saes[2.0].parameters())]
    assert max(differ) > 0  # autocast was on
    assert abs(fvu["fast"] - fvu["exact"]) < 0.02 * fvu["exact"] + 1e-3, fvu


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="precision must be one of"):
        cfg(precision="float16")


def test_untied_training_runs_the_resampling_schedule(store):
    # a random tiny model leaves no feature dead, so this checks the schedule and the constraint; revival itself
    # is tested on planted dead features below and shown on real activations in notebook 01
    res = train_saes(
        store,
        cfg(architecture="untied", ratios=(4.0,), alphas=(20.0,), epochs=30, resample=True, batch_size=32),
        progress=False,
    )
    assert len(res.resampled[4.0]) == 4
    sae = res.saes[4.0]
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(1, 256), rtol=1e-5, atol=1e-5)


def test_resample_rewrites_dead_features_and_resets_adam():
    sae = UntiedSAE(SAEConfig("untied", 8, 16, (0.1,)), seed=0)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    sae.loss_terms(torch.randn(32, 8))["loss"].sum().backward()
    opt.step()
    dead = torch.zeros(1, 16, dtype=torch.bool)
    dead[0, [2, 5]] = True
    n = resample_dead(sae, opt, dead, torch.randn(100, 8), torch.Generator().manual_seed(0))
    assert n == 2 and (sae.b_enc[0, [2, 5]] == 0).all()
    assert (opt.state[sae.W_enc]["exp_avg"][0, [2, 5]] == 0).all()
    assert (opt.state[sae.W_enc]["exp_avg"][0, 0] != 0).any()
    torch.testing.assert_close(sae.W_dec[0, :, [2, 5]].norm(dim=0), torch.ones(2))
    assert ResampleSchedule.scaled(6000).steps == (800, 1600, 2400, 3200)


def test_metrics_on_known_answers(store, tiny_model):
    d = store.width(HOOK)
    perfect = TiedSAE(SAEConfig("tied", d, 2 * d, (0.1,), model=store.config["model"], hook=HOOK))
    with torch.no_grad():
        perfect.weight.copy_(torch.cat([torch.eye(d), -torch.eye(d)])[None])
    m = reconstruction_metrics(perfect, store, HOOK)[0]
    assert m["fvu"] < 1e-10 and m["l0"] == pytest.approx(d, abs=1) and m["eval_tokens"] == store.n_rows
    assert m["dense_fraction"] > 0.9 and m["dead_fraction"] == 0.0
    off = TiedSAE(SAEConfig("tied", d, 4, (0.1,), model=store.config["model"], hook=HOOK))
    with torch.no_grad():
        off.encoder_bias.fill_(-1e6)  # never fires: reconstruction 0, every feature dead
    m0 = reconstruction_metrics(off, store, HOOK)[0]
    x = torch.from_numpy(np.array(store.activations(HOOK)))
    expected = x.pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    assert m0["fvu"] == pytest.approx(expected.item(), rel=1e-4) and m0["dead_fraction"] == 1.0 and m0["l0"] == 0
    half = TiedSAE(SAEConfig("tied", d, 2 * d, (0.1, 0.2), model=store.config["model"], hook=HOOK))
    counts = reconstruction_metrics(half, store, HOOK, reconstruct=False)  # the release's dead count: codes only
    full = reconstruction_metrics(half, store, HOOK)
    assert [{k: v for k, v in r.items() if k != "fvu"} for r in full] == counts and "fvu" not in counts[0]
    # the release's FVU with outliers: sums over disjoint row sets add up to the union's metrics
    part = np.arange(store.n_rows) % 3 == 0
    joined = (
        reconstruction_sums(half, store, HOOK, row_mask=part) + reconstruction_sums(half, store, HOOK, row_mask=~part)
    ).metrics()
    for a, b in zip(joined, full):
        assert a["eval_tokens"] == b["eval_tokens"] and a["l0"] == pytest.approx(b["l0"], rel=1e-12)
        assert a["fvu"] == pytest.approx(b["fvu"], rel=1e-9) and a["dead_fraction"] == b["dead_fraction"]
    with pytest.raises(ValueError, match="no rows"):
        reconstruction_sums(half, store, HOOK, row_mask=np.zeros(store.n_rows, dtype=bool)).metrics()
    tokens = torch.from_numpy(np.array(store.tokens[:4]))
    ce = ce_loss_recovered(tiny_model, perfect, HOOK, tokens, separator_id=3)[0]
    assert ce["ce_recovered"] == pytest.approx(1.0, abs=1e-4) and ce["kl"] == pytest.approx(0.0, abs=1e-5)
    assert ce["kl_recovered"] == pytest.approx(1.0, abs=1e-4) and ce["kl_zero"] > 0
    ce0 = ce_loss_recovered(tiny_model, off, HOOK, tokens, separator_id=3)[0]
    assert ce0["ce_recovered"] == pytest.approx(0.0, abs=1e-4)
    assert ce0["kl_recovered"] == pytest.approx(0.0, abs=1e-4)  # an SAE that outputs zeros is the zero ablation
    eye = torch.eye(4)
    assert mmcs(eye, eye) == pytest.approx(1.0) and mmcs(eye, -eye) < 0.01


@pytest.mark.parametrize("max_norm", [None, "median"])
def test_patched_logits_from_the_cached_residual_match_a_full_hooked_forward(store, tiny_model, max_norm):
    from saelib.dictionaries.metrics import patch_runner, kept_positions

    tokens = torch.from_numpy(np.array(store.tokens[:4]))
    d = store.width(HOOK)
    sae = TiedSAE(SAEConfig("tied", d, 2 * d, (1e-3,), model=store.config["model"], hook=HOOK))
    keep = kept_positions(tokens, separator_id=3)
    if max_norm == "median":
        with torch.no_grad():
            _, cache = tiny_model.run_with_cache(tokens, names_filter=[HOOK])
        max_norm = float(cache[HOOK].norm(dim=-1).median())

    def reconstruct(act):
        return sae.decode(sae.encode(act))

    def splice(act, hook=None):
        where = keep if max_norm is None else keep & (act.norm(dim=-1) <= max_norm)
        return torch.where(where[..., None], reconstruct(act), act)

    with torch.no_grad():
        clean, run_patched = patch_runner(tiny_model, tokens, HOOK, keep, max_norm)
        want = tiny_model.run_with_hooks(tokens, fwd_hooks=[(HOOK, splice)])
        torch.testing.assert_close(clean, tiny_model(tokens))
        got = run_patched(reconstruct)
    assert (got - clean).abs().max() > 1e-3  # the splice changed something
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_ce_recovered_for_many_saes_matches_one_at_a_time(store, tiny_model):
    """Notebook 01 evaluates 8 ensembles at 5 hooks with one clean pass; the numbers must be those of separate calls,
    residual hooks (from the cache) and other hooks (a full rerun) alike."""
    from saelib.dictionaries.metrics import ce_loss_recovered_many

    tokens = torch.from_numpy(np.array(store.tokens[:6]))
    model = store.config["model"]
    hooks = ["blocks.0.hook_resid_post", HOOK, HOOK, "blocks.1.mlp.hook_post"]
    saes = []
    for i, hook in enumerate(hooks):
        d = 4 * store.width(HOOK) if "mlp" in hook else store.width(HOOK)
        saes.append(TiedSAE(SAEConfig("tied", d, 2 * d, (1e-3, 1e-2)[: 1 + i % 2], model=model, hook=hook), seed=i))
    means = {HOOK: torch.from_numpy(np.array(store.activations(HOOK))).mean(0)}
    many = ce_loss_recovered_many(tiny_model, saes, tokens, separator_id=3, batch_size=4, mean_activations=means)
    for sae, rows in zip(saes, many, strict=True):
        one = ce_loss_recovered(
            tiny_model, sae, sae.cfg.hook, tokens, separator_id=3, batch_size=4, mean_activation=means.get(sae.cfg.hook)
        )
        assert len(rows) == sae.cfg.n_models and set(rows[0]) == set(one[0])
        for got, want in zip(rows, one):
            for key, value in want.items():
                assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (sae.cfg.hook, key)


def test_auto_precision_keeps_float32_where_bfloat16_is_emulated(monkeypatch):
    # an AVX2-only CPU emulates bfloat16 (its probe measured 0.014x float32); one with AVX512-BF16 ran it ~4x faster
    assert pick_precision("auto", speedup=0.09) == "float32"
    assert pick_precision("auto", speedup=4.0) == "bfloat16"
    speedup = bfloat16_speedup("cpu", repeats=1)  # the real probe runs and gives a ratio
    assert np.isfinite(speedup) and speedup > 0
    probe = {"speedup": 0.09}

    def fake_probe(device="cpu"):
        assert probe["speedup"] is not None, "probed for an explicit precision"
        return probe["speedup"]

    monkeypatch.setattr(precision_mod, "bfloat16_speedup", fake_probe)
    assert pick_precision("auto") == "float32"  # measures when not told
    probe["speedup"] = 4.0
    assert pick_precision("auto") == "bfloat16"
    probe["speedup"] = None  # an explicit precision never probes
    assert pick_precision("float32") == "float32" and pick_precision("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="'auto' or one of"):
        pick_precision("fp16")


def test_release_plan_trains_at_the_precision_it_is_given():
    assert {r.train.precision for r in release_plan(precision="float32")} == {"float32"}
    assert {r.train.precision for r in release_plan()} == {RELEASE_PRECISION}


@pytest.mark.parametrize("architecture", ["tied", "untied"])
def test_member_steps_match_autograd_through_the_shared_parameters(architecture):
    """train_step trains one member at a time on leaf copies of its slices (no full-size gradient per member, a gradient
    buffer reused across steps); the weights must be bit-identical to plain autograd through slices of the shared
    tensors, L1 warm-up and (untied) a resample between steps included."""
    from saelib.dictionaries.resampling import resample_dead
    from saelib.dictionaries.sae import SAEConfig, UntiedSAE
    from saelib.dictionaries.train import train_step

    cls = TiedSAE if architecture == "tied" else UntiedSAE
    cfg_ = SAEConfig(architecture, 24, 60, (1e-3, 1e-2, 1e-1) if architecture == "tied" else (0.1, 1.0, 3.0))
    fast, plain = cls(cfg_, seed=3), cls(cfg_, seed=3)
    opt_fast, opt_plain = torch.optim.Adam(fast.parameters(), lr=1e-2), torch.optim.Adam(plain.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for step in range(1, 7):
        x, l1_scale = torch.randn(40, 24, generator=gen) * 2, min(1.0, step / 3)
        train_step(fast, opt_fast, x, step, l1_scale)
        opt_plain.zero_grad(set_to_none=True)
        for i in range(cfg_.n_models):
            terms = plain.loss_terms(x, i)
            (terms["loss"] - (1 - l1_scale) * plain.alphas[i : i + 1] * terms["l1"]).sum().backward()
        plain.before_step()
        opt_plain.step()
        plain.after_step()
        if step == 3 and architecture == "untied":  # re-initialised rows and Adam state, then more steps
            dead = torch.zeros(3, 60, dtype=torch.bool)
            dead[:, ::7] = True
            inputs = torch.randn(200, 24, generator=torch.Generator().manual_seed(9))
            for sae_, opt_ in ((fast, opt_fast), (plain, opt_plain)):
                assert resample_dead(sae_, opt_, dead, inputs, torch.Generator().manual_seed(4)) == 27
    moved = [not torch.equal(p, cls(cfg_, seed=3).state_dict()[n]) for n, p in fast.named_parameters()]
    assert all(moved)  # the comparison below is between trained weights, not two copies of the initialisation
    for (name, p), q in zip(fast.named_parameters(), plain.parameters()):
        assert torch.equal(p, q), name


def test_a_non_finite_input_row_stops_the_step_before_any_member_trains():
    from saelib.dictionaries.sae import SAEConfig
    from saelib.dictionaries.train import train_step

    sae = TiedSAE(SAEConfig("tied", 8, 16, (1e-3, 1e-2)), seed=0)
    opt = torch.optim.Adam(sae.parameters())
    x = torch.randn(10, 8)
    x[3, 2] = float("nan")
    before = {k: v.clone() for k, v in sae.state_dict().items()}
    with pytest.raises(TrainingDivergedError, match="row 3 of the batch at step 7.*corrupt"):
        train_step(sae, opt, x, 7)
    assert all(torch.equal(before[k], v) for k, v in sae.state_dict().items())
