"""The release pipeline end to end on the tiny model: hygiene report, training with the release recipe,
held-out evaluation, export with a manifest, and loading back by name with the sha256 checked."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from saelib.activations.harvest import harvest
from saelib.activations.store import hook_file
from saelib.core.artifacts import file_sha256
from saelib.dictionaries import release
from saelib.dictionaries.shipped import load_release
from saelib.dictionaries.train import TrainConfig, train_saes
from saelib.model.hooks import mlp_post, resid_post
from saelib.model.loader import model_weights_sha256
from saelib.text.corpus import PackedContexts

HOOK = "blocks.1.hook_resid_post"


def _store(model, seed, n=48, length=16):
    tokens = np.random.default_rng(seed).integers(5, 1000, size=(n, length))
    ctx = PackedContexts(tokens, np.zeros(n, int), np.arange(n) * length, ("toy",), {"toy": 1.0})
    return harvest(model, [HOOK], ctx, corpus_name="toy", batch_size=8, dtype="float32", seed=seed, progress=False)


def test_release_pipeline_on_the_tiny_model(tiny_model, tmp_path, monkeypatch):
    train, heldout = _store(tiny_model, 0), _store(tiny_model, 1)
    arr = np.load(hook_file(train.dir, HOOK), mmap_mode="r+")
    arr[33] *= 500  # one massive activation
    arr.flush()
    hygiene = release.hygiene_report(train, [HOOK])
    assert hygiene[0]["outlier_rows"] == 1 and hygiene[0]["outlier_share_of_sq_norm"] > 0.9
    assert hygiene[0]["share_top_1pct"] >= hygiene[0]["share_top_0.1pct"]

    recipe = release._schedule()
    recipe.update(batch_size=32, checkpoint_every=8, epochs=4)  # ~90 steps: a curve of a few logged points
    run = release.ReleaseRun("resid1-tied-r2", TrainConfig(HOOK, ratios=(2.0,), alphas=(1e-3, 1e-2), **recipe))
    result = train_saes(train, run.train, name=run.name, progress=False)
    assert result.saes[2.0].cfg.extra["outlier_norm_ratio"] == release.OUTLIER_NORM_RATIO
    rows = release.evaluate_run(
        tiny_model, result, run, train, heldout, torch.from_numpy(heldout.tokens[:2].copy()), dead_rows=400
    )
    assert [r["alpha"] for r in rows] == [1e-3, 1e-2]
    assert rows[0]["l0"] >= rows[1]["l0"]  # a larger penalty never buys a denser code
    assert all(0 <= r["dead_fraction"] <= 1 and r["dead_tokens"] <= 400 and "ce_recovered_mean" in r for r in rows)
    assert all(r["train_seconds"] == result.seconds > 0 and r["eval_seconds"] > 0 for r in rows)  # stage costs
    assert all(r["kl_recovered"] <= 1 and "kl_recovered_mean" in r for r in rows)
    (result.directory / "release_metrics.json").rename(result.directory / "full_metrics.json")
    pilot = release.evaluate_run(
        tiny_model,
        result,
        run,
        train,
        heldout,
        torch.from_numpy(heldout.tokens[:2].copy()),
        dead_rows=400,
        heldout_rows=50,
    )  # a pilot reads L0 on the first rows only
    assert all(p["eval_tokens"] <= 50 < r["eval_tokens"] for p, r in zip(pilot, rows))
    (result.directory / "full_metrics.json").replace(result.directory / "release_metrics.json")

    out = tmp_path / "dictionaries"
    monkeypatch.setattr(release, "ship_alphas", lambda run, rows: [rows[0]["alpha"]])
    manifest = release.export_release(
        [(run, result, rows)], hygiene, train, heldout, model_weights_sha256(tiny_model), out=out
    )
    data = json.loads(manifest.read_text())
    (entry,) = data["dictionaries"]
    assert entry["metrics"]["alpha"] == 1e-3 and len(data["sweep"]) == 2 and data["chosen"][HOOK]
    curve = entry["curve"]
    assert curve and curve[-1]["activations"] > curve[0]["activations"] and all(np.isfinite(p["fvu"]) for p in curve)
    sae = load_release(entry["name"], model_name=train.config["model"], hook=HOOK, root=out)
    x = torch.from_numpy(np.array(heldout.activations(HOOK)[1:40], dtype=np.float32))
    ref = result.sae(2.0, 1e-3)
    rel = (sae.decode(sae.encode(x)) - ref.decode(ref.encode(x))).norm() / x.norm()
    assert rel < 1e-2  # float16 storage


def test_the_size_limit_is_checked_before_writing(tiny_model, tmp_path):
    train = _store(tiny_model, 0)
    run = release.ReleaseRun("r", TrainConfig(HOOK, ratios=(2.0,), alphas=(1e-3,), batch_size=64))
    result = train_saes(train, run.train, name="r", progress=False)
    rows = [{"alpha": 1e-3, "ratio": 2.0, "hook": HOOK, "ce_recovered": 1.0}]
    with pytest.raises(ValueError, match="MiB"):
        release.export_release([(run, result, rows)], [], train, train, "sha", out=tmp_path / "d", max_bytes=1000)
    assert not (tmp_path / "d").exists()


def test_the_plan_covers_what_the_notebooks_need():
    plan = {r.name: r.train for r in release.release_plan()}
    for layer in release.RESID_LAYERS:
        assert plan[f"resid{layer}-tied-r2"].ratios == (2.0,)
        r4 = plan[f"resid{layer}-tied-r4"]
        assert 0.0 in r4.alphas and max(r4.alphas) <= 1e-3
        assert all(any(abs(a - p) < 1e-12 for p in release.PAPER_ALPHAS) for a in r4.alphas if a)
    mlp = plan[f"mlp{release.MLP_LAYER}-untied-r2"]
    assert mlp.architecture == "untied" and mlp.resample
    # resampling as a controlled pair: the same recipe at a learning rate where features die, with and without
    demo = plan[f"mlp{release.MLP_LAYER}-untied-r2-resampling"]
    twin = plan[f"mlp{release.MLP_LAYER}-untied-r2-no-resampling"]
    assert demo.resample and demo.alphas == mlp.alphas and demo.lr > mlp.lr
    assert demo.max_rows < release.release_profile().harvest_tokens
    assert replace(twin, resample=True) == demo and not twin.resample
    assert release.release_profile().harvest_tokens >= 2_097_152


def test_export_merges_runs_and_never_overwrites_another_models_release(tiny_model, tmp_path, monkeypatch):
    """A release built a few runs at a time: exporting run B keeps run A's entries and files; re-exporting A
    replaces A's entries only; a manifest of another model is an error and nothing is written."""
    train, heldout = _store(tiny_model, 0), _store(tiny_model, 1)
    sha = model_weights_sha256(tiny_model)
    out = tmp_path / "dictionaries"

    def trained(name, alphas):
        run = release.ReleaseRun(name, TrainConfig(HOOK, ratios=(2.0,), alphas=alphas, batch_size=64))
        result = train_saes(train, run.train, name=name, progress=False)
        rows = [
            {
                "run": name,
                "alpha": a,
                "ratio": 2.0,
                "hook": HOOK,
                "ce_recovered": 1.0,
                "scaled_variance_per_element": 1.0,
            }
            for a in alphas
        ]
        return run, result, rows

    a, b = trained("resid1-tied-r2", (1e-3, 1e-2)), trained("resid1-tied-r4", (1e-3,))
    with monkeypatch.context() as m:  # an earlier release that shipped the whole R = 2 sweep
        m.setattr(release, "ship_alphas", lambda run, rows: [r["alpha"] for r in rows])
        release.export_release([a], [{"hook": HOOK, "rows": 1}], train, heldout, sha, out=out)
    assert len(json.loads((out / "manifest.json").read_text())["dictionaries"]) == 2
    release.export_release([b], [], train, heldout, sha, out=out)
    data = json.loads((out / "manifest.json").read_text())
    names = [d["name"] for d in data["dictionaries"]]
    # today's rule ships only A's chosen member (the sparsest with CE >= 0.9): its other member's files are gone,
    # its metrics stay in the sweep
    assert sorted(names) == sorted([release.member_name(a[0], 1e-2), release.member_name(b[0], 1e-3)])
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(names)
    assert all((out / n / "cfg.json").exists() for n in names)
    assert {r["run"] for r in data["sweep"]} == {"resid1-tied-r2", "resid1-tied-r4"}
    # B brought no hygiene rows: A's are kept, named by the store they describe
    assert data["hygiene"]["per_hook"] == [{"hook": HOOK, "rows": 1, "store": train.dir.name}]
    release.export_release([b], [{"hook": HOOK, "rows": 2}], heldout, heldout, sha, out=out)  # another store
    rows = json.loads((out / "manifest.json").read_text())["hygiene"]["per_hook"]
    assert sorted((r["store"], r["rows"]) for r in rows) == sorted([(train.dir.name, 1), (heldout.dir.name, 2)])
    assert all(d["data"]["train_store"] == train.dir.name for d in data["dictionaries"])

    mmcs_row = {"hook": HOOK, "small_run": "resid1-tied-r2", "large_run": "resid1-tied-r4"}
    release.merge_mmcs([mmcs_row], train.config["model"], sha, out)
    release.export_release([b], [], train, heldout, sha, out=out)
    assert json.loads((out / "manifest.json").read_text())["mmcs"] == []  # computed from B's earlier weights
    release.merge_mmcs([mmcs_row], train.config["model"], sha, out)
    a_fewer = (a[0], a[1], a[2][:1])  # A re-exported with one member: its other folder goes, B's stay
    release.export_release([a_fewer], [], train, heldout, sha, out=out)
    data = json.loads((out / "manifest.json").read_text())
    assert data["mmcs"] == []
    assert sorted(d["run"] for d in data["dictionaries"]) == ["resid1-tied-r2", "resid1-tied-r4"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(d["name"] for d in data["dictionaries"])

    c_run, c_res, c_rows = trained("resid1-tied-r8", (1e-3,))  # metrics only: a sweep row, no files, not chosen
    c = (release.ReleaseRun(c_run.name, c_run.train, metrics_only=True), c_res, c_rows)
    chosen_before = data["chosen"]
    release.merge_mmcs([mmcs_row], train.config["model"], sha, out)
    release.export_release([c], [], train, heldout, sha, out=out)
    data = json.loads((out / "manifest.json").read_text())
    assert data["mmcs"] == [mmcs_row]  # another run's export keeps it
    assert "resid1-tied-r8" not in {d["run"] for d in data["dictionaries"]} and data["chosen"] == chosen_before
    (c_row,) = [r for r in data["sweep"] if r["run"] == "resid1-tied-r8"]
    assert c_row["train_store"] == train.dir.name and c_row["train_rows"] > 0 and "revival" not in c_row
    assert not any(p.name.startswith("resid1-tied-r8") for p in out.iterdir())

    before = (out / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="another model"):
        release.export_release([b], [], train, heldout, "0" * 64, out=out)
    assert (out / "manifest.json").read_bytes() == before


def test_what_ships_is_what_the_notebooks_read():
    """Every member of the IOI sweep (alpha = 0 control included) and of the untied MLP run; elsewhere only the
    chosen member (the sparsest with CE recovered >= 0.9), so the folder stays under 200 MB."""
    plan = {r.name: r for r in release.release_plan()}

    def rows(run):
        return [{"alpha": a, "ce_recovered": 0.95 if a < 3e-3 else 0.5} for a in plan[run].train.alphas]

    for layer in release.IOI_LAYERS:
        run = f"resid{layer}-tied-r4"
        assert release.ship_alphas(plan[run], rows(run)) == list(plan[run].train.alphas)
    assert release.ship_alphas(plan["resid14-tied-r2"], rows("resid14-tied-r2")) == [2.15e-3]
    for layer in release.IOI_LAYERS:  # plus the member at the alpha the R = 4 sweep shares, for MMCS across ratios
        assert release.ship_alphas(plan[f"resid{layer}-tied-r2"], rows(f"resid{layer}-tied-r2")) == [
            release.MMCS_ALPHA,
            2.15e-3,
        ]
        assert release.MMCS_ALPHA in plan[f"resid{layer}-tied-r4"].train.alphas
    for layer in set(release.RESID_LAYERS) - set(release.IOI_LAYERS):  # R = 4 below the IOI layers: metrics only
        assert plan[f"resid{layer}-tied-r4"].metrics_only
        assert release.ship_alphas(plan[f"resid{layer}-tied-r4"], rows(f"resid{layer}-tied-r4")) == []
    mlp = f"mlp{release.MLP_LAYER}-untied-r2"
    assert release.ship_alphas(plan[mlp], rows(mlp)) == list(plan[mlp].train.alphas)
    assert release.ship_alphas(plan[mlp + "-resampling"], rows(mlp + "-resampling")) == []


def test_the_comparison_ships_one_member_near_l0_32_where_a_notebook_reads_it():
    from saelib.dictionaries.release_comparison import LADDER_LAYER, SHIP_L0, calibrated_run, comparison_plan

    plan = {r.name: r for r in comparison_plan()}
    rows = [{"alpha": a, "l0": l0} for a, l0 in ((16.0, 15.1), (32.0, 35.0), (64.0, 61.0))]
    for arch in ("topk", "batchtopk", "jumprelu"):
        assert release.ship_alphas(plan[f"resid{LADDER_LAYER}-{arch}-r8"], rows) == [32.0]
        assert release.ship_alphas(plan[f"resid8-{arch}-r8"], rows) == []  # metrics only away from the analysed layers
    assert release.ship_alphas(plan["resid26-topk-r8"], rows) == [32.0]
    tied = calibrated_run(plan[f"resid{LADDER_LAYER}-tied-r8-pilot"], [1e-3, 2e-3, 4e-3])
    assert tied.ship_l0 == SHIP_L0 and not tied.metrics_only
    assert release.ship_alphas(
        tied, [{"alpha": 1e-3, "l0": 70.0}, {"alpha": 2e-3, "l0": 30.0}, {"alpha": 4e-3, "l0": 14.0}]
    ) == [2e-3]
    assert calibrated_run(plan["resid8-tied-r8-pilot"], [1e-3]).metrics_only
    assert all(plan[n].metrics_only for n in plan if n.endswith(("-pilot", "-ladder")) or n.startswith("mlp"))


def test_one_store_holds_every_release_hook_up_to_the_deepest_layer_of_the_plan():
    plan = {r.name: r for r in release.release_plan()}
    assert release.harvest_hooks(list(plan.values())) == release.release_hooks()  # the full release: one store
    shallow = [plan[n] for n in ("mlp14-untied-r2-resampling", "resid2-tied-r4")]
    assert release.harvest_hooks(shallow) == [resid_post(2), resid_post(8), resid_post(14), mlp_post(14)]
    assert release.harvest_hooks([plan["resid2-tied-r2"]]) == [resid_post(2)]
    # the paper profile's disk (24 GB per residual hook): only the hooks the plan trains on
    assert release.harvest_hooks(shallow, planned_only=True) == [resid_post(2), mlp_post(14)]
    assert release.harvest_hooks([plan["resid14-tied-r2"]], planned_only=True) == [resid_post(14)]


_METRIC_DEFAULTS = {
    "l0": 1.0,
    "fvu": 0.1,
    "ce_recovered": 0.9,
    "kl": 0.1,
    "dead_fraction": 0.0,
    "dense_fraction": 0.0,
    "dead_tokens": 1,
    "eval_tokens": 1,
}


def _complete(manifest: dict) -> dict:
    """``manifest`` with every field ``Manifest.from_json`` requires and the test leaves out, at a neutral value
    (``targets`` reads the manifest as typed records)."""

    def member(r):
        return {"hook": mlp_post(14), "ratio": 2.0, "architecture": r["run"].split("-")[1], **_METRIC_DEFAULTS, **r}

    def shipped(e):
        return {"d_in": 8, "d_sae": 16, **member(e), "metrics": {**_METRIC_DEFAULTS, **e.get("metrics", {})}}

    return {
        "model": {"name": "m", "weights_sha256": "0"},
        "data": {"train_tokens": 8, "heldout_tokens": 4, "context_length": 2},
        "hygiene": {"rule": "", "per_hook": []},
        "chosen": {},
        **manifest,
        "sweep": [member(r) for r in manifest.get("sweep", [])],
        "dictionaries": [shipped(e) for e in manifest.get("dictionaries", [])],
    }


def test_targets_report_resampling_from_shipped_entries_and_metrics_only_rows():
    """A shipped member whose resampling never acted reads "0 of 0 ... (none died)", NOT met; a metrics-only
    member (no weights shipped) is reported from its sweep row; runs that do not resample get no such row."""

    def row(run, alpha, l0, fvu, **extra):
        return {"run": run, "hook": "blocks.14.mlp.hook_post", "alpha": alpha, "l0": l0, "fvu": fvu, **extra}

    shipped = row("mlp14-untied-r2", 1.0, 400.0, 0.2)
    manifest = {
        "sweep": [
            shipped,
            row(
                "mlp14-untied-r2-resampling",
                30.0,
                5.0,
                0.7,
                revival={"resampled_features": 6, "fired_after_resample": 6},
            ),
            row("resid14-tied-r4", 8.6e-4, 190.0, 0.1),
        ],
        "dictionaries": [
            {
                "name": "mlp14-untied-r2-a1p00e00",
                "run": "mlp14-untied-r2",
                "alpha": 1.0,
                "train_config": {"resample": True},
                "metrics": shipped,
                "revival": {"resampled_features": 0, "fired_after_resample": 0},
            }
        ],
        "chosen": {},
    }
    revived = {t["run"]: t for t in release.targets(_complete(manifest)) if t["target"].startswith("resampling")}
    assert set(revived) == {"mlp14-untied-r2-a1p00e00", "mlp14-untied-r2-resampling-a3p00e01"}
    never_died = revived["mlp14-untied-r2-a1p00e00"]
    assert not never_died["met"] and "none died" in never_died["measured"]
    # the FVU-at-L0 = 32 target is about the residual layers' Fig. 2 sweeps, not the MLP SAE
    assert not [
        t
        for t in release.targets(_complete(manifest))
        if t["target"].startswith("FVU at L0") and t["run"].startswith("mlp")
    ]
    assert revived["mlp14-untied-r2-resampling-a3p00e01"]["met"]
    assert revived["mlp14-untied-r2-resampling-a3p00e01"]["measured"].startswith("6 of 6")
    assert not [
        t for t in release.targets(_complete(manifest)) if "than without" in t["target"]
    ]  # no twin in the sweep


def test_targets_compare_the_resampling_run_with_its_twin_at_each_penalty():
    def row(run, alpha, dead):
        return {
            "run": run,
            "hook": "blocks.14.mlp.hook_post",
            "alpha": alpha,
            "l0": 10.0,
            "fvu": 0.5,
            "dead_fraction": dead,
            "dead_tokens": 1_048_576,
        }

    manifest = {
        "sweep": [
            row("mlp14-untied-r2-resampling", 1.0, 0.0),
            row("mlp14-untied-r2-resampling", 3.3, 0.05),
            row("mlp14-untied-r2-no-resampling", 1.0, 0.0),
            row("mlp14-untied-r2-no-resampling", 3.3, 0.30),
        ],
        "dictionaries": [],
        "chosen": {},
    }
    pair = {t["run"]: t for t in release.targets(_complete(manifest)) if "than without" in t["target"]}
    assert set(pair) == {"mlp14-untied-r2-resampling-a1p00e00", "mlp14-untied-r2-resampling-a3p30e00"}
    assert pair["mlp14-untied-r2-resampling-a3p30e00"]["met"]  # 5% dead with resampling against 30% without
    assert not pair["mlp14-untied-r2-resampling-a1p00e00"]["met"]  # none died either way: nothing shown


def test_mmcs_across_ratios_separates_shared_from_unrelated_dictionaries():
    gen = torch.Generator().manual_seed(0)
    small = torch.randn(32, 16, generator=gen)
    large = torch.cat([small + 0.01 * torch.randn(32, 16, generator=gen), torch.randn(32, 16, generator=gen)])
    shared = release.mmcs_across_ratios(small, large)
    assert shared["mmcs_small_to_large"] > 0.99 and shared["share_cos_ge_0.9"] == 1.0
    assert shared["mmcs_large_to_small"] < shared["mmcs_small_to_large"]  # half of the large one is unrelated
    unrelated = release.mmcs_across_ratios(small, torch.randn(64, 16, generator=gen))
    assert (
        unrelated["mmcs_small_to_large"] < 0.8
        and abs(unrelated["mmcs_small_to_large"] - unrelated["random_control"]) < 0.1
    )


def test_ratio_mmcs_pairs_a_layers_r2_and_r4_runs_and_merges_into_the_manifest(tiny_model, tmp_path):
    train = _store(tiny_model, 0)
    trained = {}
    for r, alphas in ((2, (release.MMCS_ALPHA, 1e-2)), (4, (0.0, release.MMCS_ALPHA))):
        run = release.ReleaseRun(
            f"resid2-tied-r{r}",
            TrainConfig(HOOK, ratios=(float(r),), alphas=alphas, allow_zero_alpha=True, batch_size=64),
        )
        trained[run.name] = (run, train_saes(train, run.train, name=run.name, progress=False))
    (row,) = release.ratio_mmcs(trained, train.dir.name)
    assert (row["n_small"], row["n_large"]) == (2 * 64, 4 * 64) and row["train_store"] == train.dir.name
    assert row["small"].startswith("resid2-tied-r2-a8p58e-04") and 0 < row["random_control"] < 1
    assert release.ratio_mmcs({"resid2-tied-r2": trained["resid2-tied-r2"]}, train.dir.name) == []  # no pair

    model = {"name": train.config["model"], "weights_sha256": "sha"}
    with pytest.raises(FileNotFoundError, match="export the release runs first"):
        release.merge_mmcs([row], model["name"], "sha", tmp_path)
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "model": model,
                "sweep": [],
                "dictionaries": [],
                "chosen": {},
                "mmcs": [dict(row, mmcs_small_to_large=0.0)],
            }
        )
    )
    before = (tmp_path / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="another model"):
        release.merge_mmcs([row], model["name"], "0" * 64, tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == before
    data = json.loads(release.merge_mmcs([row], model["name"], "sha", tmp_path).read_text())
    assert data["mmcs"] == [row]  # the earlier row of the same hook is replaced
    (target,) = [t for t in release.targets(_complete(data)) if t["target"].startswith("MMCS")]
    assert target["met"] == (row["mmcs_small_to_large"] >= 2 * row["random_control"])


def _trained(train, name, alphas, batch_size=64):
    run = release.ReleaseRun(name, TrainConfig(HOOK, ratios=(2.0,), alphas=alphas, batch_size=batch_size))
    result = train_saes(train, run.train, name=name, progress=False)
    rows = [
        {"run": name, "alpha": a, "ratio": 2.0, "hook": HOOK, "ce_recovered": 1.0, "scaled_variance_per_element": 1.0}
        for a in alphas
    ]
    return run, result, rows


def _ship_all(monkeypatch):
    monkeypatch.setattr(release, "ship_alphas", lambda run, rows: [r["alpha"] for r in rows])


def test_export_removes_only_members_the_previous_manifest_listed_and_never_follows_links(
    tiny_model, tmp_path, monkeypatch
):
    """A user's own SAE folder and a symlinked folder (both with a cfg.json, neither in the manifest) survive a
    re-export that drops a member; a member folder that is a link is refused before anything is written."""
    train = _store(tiny_model, 0)
    sha = model_weights_sha256(tiny_model)
    out = tmp_path / "dictionaries"
    _ship_all(monkeypatch)
    run, result, rows = _trained(train, "resid1-tied-r2", (1e-3, 1e-2))
    release.export_release([(run, result, rows)], [], train, train, sha, out=out)
    (out / "mine").mkdir()
    (out / "mine" / "cfg.json").write_text("{}")
    (out / "mine" / "sae_weights.safetensors").write_bytes(b"user's weights")
    project = tmp_path / "project"
    project.mkdir()
    (project / "cfg.json").write_text("{}")
    (project / "notes.txt").write_text("keep me")
    (out / "x").symlink_to(project, target_is_directory=True)

    release.export_release([(run, result, rows[:1])], [], train, train, sha, out=out)
    dropped = release.member_name(run, 1e-2)
    assert not (out / dropped).exists()  # listed by the previous manifest, not by this one
    assert sorted(p.name for p in (out / "mine").iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    assert (out / "x").is_symlink() and sorted(p.name for p in project.iterdir()) == ["cfg.json", "notes.txt"]
    assert not list(out.glob(f"{release.STAGING_PREFIX}*"))

    kept = release.member_name(run, 1e-3)
    shutil.rmtree(out / kept)
    (out / kept).symlink_to(project, target_is_directory=True)  # a member replaced by a link
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(ValueError, match="symbolic link"):
        release.export_release([(run, result, rows)], [], train, train, sha, out=out)
    assert sorted(p.name for p in project.iterdir()) == ["cfg.json", "notes.txt"]
    assert (out / "manifest.json").read_bytes() == before


def test_a_killed_export_leaves_the_previous_release_loadable(tiny_model, tmp_path, monkeypatch):
    """Members are written whole into a temporary folder before any is switched in: a kill while writing leaves
    every member of the previous release matching its manifest; the next export removes a killed one's folder."""
    from saelib.dictionaries.sae import saelens_format

    train = _store(tiny_model, 0)
    sha = model_weights_sha256(tiny_model)
    out = tmp_path / "dictionaries"
    _ship_all(monkeypatch)
    first = _trained(train, "resid1-tied-r2", (1e-3, 1e-2))
    release.export_release([first], [], train, train, sha, out=out)
    names = [d["name"] for d in json.loads((out / "manifest.json").read_text())["dictionaries"]]
    retrained = _trained(train, "resid1-tied-r2", (1e-3, 1e-2), batch_size=32)  # other weights, same names

    export, calls = saelens_format.export_saelens, []

    def killed_on_the_second_member(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return export(*args, **kwargs)

    monkeypatch.setattr(saelens_format, "export_saelens", killed_on_the_second_member)
    with pytest.raises(KeyboardInterrupt):
        release.export_release([retrained], [], train, train, sha, out=out)
    for name in names:
        load_release(name, root=out)  # every file still matches the previous manifest
    monkeypatch.setattr(saelens_format, "export_saelens", export)

    (out / f"{release.STAGING_PREFIX}left-by-a-kill" / names[0]).mkdir(parents=True)
    release.export_release([retrained], [], train, train, sha, out=out)
    assert not list(out.glob(f"{release.STAGING_PREFIX}*"))
    for name in names:
        load_release(name, root=out)
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["manifest.json"])


def test_an_export_that_changes_nothing_leaves_the_manifest_alone(tiny_model, tmp_path, monkeypatch):
    train = _store(tiny_model, 0)
    sha = model_weights_sha256(tiny_model)
    out = tmp_path / "dictionaries"
    _ship_all(monkeypatch)
    done = _trained(train, "resid1-tied-r2", (1e-3,))
    monkeypatch.setattr(release, "git_revision", lambda: "a" * 40)
    release.export_release([done], [], train, train, sha, out=out)
    name = release.member_name(done[0], 1e-3)
    manifest, weights = (out / "manifest.json").read_bytes(), (out / name / "sae_weights.safetensors").stat()
    monkeypatch.setattr(release, "git_revision", lambda: "b" * 40)  # a later commit, same weights
    release.export_release([done], [], train, train, sha, out=out)
    assert (out / "manifest.json").read_bytes() == manifest
    assert (out / name / "sae_weights.safetensors").stat().st_ino == weights.st_ino  # the folder was kept
    data = json.loads(manifest)
    assert data["code"]["git_revision"] == "a" * 40


def _hand_made_release(tmp_path, entry: dict):
    """A release folder whose manifest holds ``entry`` and a real SAELens folder ``x`` beside it."""
    from saelib.dictionaries.sae import SAEConfig, TiedSAE
    from saelib.dictionaries.sae.saelens_format import export_saelens

    sae = TiedSAE(SAEConfig("tied", 8, 16, (1e-3,), "m", HOOK, 1.0), seed=0)
    paths = export_saelens(sae, tmp_path / "x", "m")
    root = tmp_path / "dictionaries"
    root.mkdir()
    files = {f: file_sha256(Path(p)) for f, p in paths.items()}
    (root / "manifest.json").write_text(
        json.dumps({"dictionaries": [{k: files if v is None else v for k, v in entry.items()}]})
    )
    return root


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", ".hidden", ".", ".."])
def test_load_release_refuses_a_name_that_is_not_a_plain_folder_name(tmp_path, name):
    from saelib.dictionaries.shipped import DictionaryIntegrityError

    root = _hand_made_release(tmp_path, {"name": name, "sha256": None})
    with pytest.raises(DictionaryIntegrityError, match="not a plain folder or file name"):
        load_release(name, root=root)


@pytest.mark.parametrize("hashes", [{}, {"cfg.json": None}, {"sae_weights.safetensors": None}])
def test_load_release_refuses_a_dictionary_whose_files_are_not_all_hashed(tmp_path, hashes):
    from saelib.dictionaries.shipped import DictionaryIntegrityError

    root = _hand_made_release(tmp_path, {"name": "x", "sha256": None})
    (root / "x").symlink_to(tmp_path / "x")
    entry = json.loads((root / "manifest.json").read_text())["dictionaries"][0]
    load_release("x", root=root)  # the complete map loads
    entry["sha256"] = {f: entry["sha256"][f] for f in hashes}
    (root / "manifest.json").write_text(json.dumps({"dictionaries": [entry]}))
    with pytest.raises(DictionaryIntegrityError, match="lists no sha256"):
        load_release("x", root=root)
