"""Matched-L0 selection and calibration, and the comparison plan built on them."""

import json

import pytest

from saelib.dictionaries.matched_l0 import TargetL0NotReachedError, calibrated_alphas, member_at_l0
from saelib.dictionaries.release import harvest_hooks, release_plan
from saelib.dictionaries.release_comparison import (
    TARGET_L0,
    calibrated_run,
    comparison_plan,
    mlp_comparison_layer,
    pilot_run,
)

PILOT = [{"run": "r", "alpha": a, "l0": l0} for a, l0 in [(1e-3, 200.0), (3e-3, 80.0), (1e-2, 30.0), (3e-2, 9.0)]]


def test_member_at_l0_picks_the_nearest_member_within_the_tolerance():
    assert member_at_l0(PILOT, 30)["alpha"] == 1e-2
    assert member_at_l0(PILOT, 85)["alpha"] == 3e-3


def test_a_target_no_member_reaches_names_the_run_the_l0s_and_the_alpha_to_train():
    with pytest.raises(TargetL0NotReachedError, match=r"r: no member within ±10% of L0 = 50 .*train alpha 0\.00"):
        member_at_l0(PILOT, 50)
    with pytest.raises(
        TargetL0NotReachedError, match="outside the members' L0 range .*extend the members' alpha grid to larger alphas"
    ):
        member_at_l0(PILOT, 2)


def test_calibration_interpolates_log_l0_against_log_alpha():
    (alpha,) = calibrated_alphas(PILOT, [30.0])
    assert alpha == pytest.approx(1e-2)
    (mid,) = calibrated_alphas(PILOT, [(80 * 30) ** 0.5])  # geometric middle of a bracket -> geometric middle alpha
    assert mid == pytest.approx((3e-3 * 1e-2) ** 0.5)
    with pytest.raises(TargetL0NotReachedError, match="smaller alphas"):
        calibrated_alphas(PILOT, [500.0])


def test_comparison_plan_trains_every_architecture_at_every_target(tmp_path, monkeypatch):
    (tmp_path / "mlp_ablation.json").write_text(json.dumps({"most_costly_mean_ablation": "blocks.3.mlp.hook_post"}))
    assert mlp_comparison_layer(tmp_path / "mlp_ablation.json") == 3
    monkeypatch.setattr("saelib.dictionaries.release_comparison.mlp_comparison_layer", lambda: 3)
    plan = comparison_plan()
    names = [r.name for r in plan]
    assert len(names) == len(set(names))
    for layer in (8, 14, 20, 26):
        for arch in ("topk", "batchtopk", "jumprelu"):
            run = next(r for r in plan if r.name == f"resid{layer}-{arch}-r8")
            assert run.train.alphas == TARGET_L0 and run.train.ratios == (8.0,) and run.train.l1_warmup_fraction == 0
        assert f"resid{layer}-tied-r8-pilot" in names
    assert {"mlp3-untied-r8", "mlp3-topk-r8"} <= set(names)
    assert "blocks.3.mlp.hook_post" in harvest_hooks(plan)
    final = calibrated_run(pilot_run(14), [1e-3, 2e-3, 4e-3])
    assert final.name == "resid14-tied-r8" and final.train.max_rows is None and final.train.alphas == (1e-3, 2e-3, 4e-3)


def test_the_papers_plan_harvests_the_same_hooks_as_before():
    assert harvest_hooks(release_plan()) == [f"blocks.{layer}.hook_resid_post" for layer in (2, 8, 14, 20, 26)] + [
        "blocks.14.mlp.hook_post"
    ]


def test_the_mlp_layer_comes_from_the_measurement_or_says_how_to_measure_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="measure_mlp_ablation.py"):
        mlp_comparison_layer(tmp_path / "missing.json")


def test_ablation_costs_are_paired_per_context_and_zero_for_a_hook_that_does_nothing(tiny_model):
    import torch

    from saelib.model.behaviour import ablation_costs

    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(5, 1000, (6, 12), generator=gen)
    costs = ablation_costs(
        tiny_model, ["blocks.0.mlp.hook_post", "blocks.1.mlp.hook_post"], tokens[:4], tokens[4:], batch_size=2
    )
    assert [c.hook for c in costs] == ["blocks.0.mlp.hook_post", "blocks.1.mlp.hook_post"]
    for c in costs:
        assert c.zero.n == c.mean.n == 4 and c.zero.mean != 0  # ablating a random MLP changes the loss
    # every position excluded: nothing is replaced, so the cost is exactly 0
    same = ablation_costs(
        tiny_model, ["blocks.0.mlp.hook_post"], tokens[:4], tokens[:4], batch_size=2, exclude_positions=tuple(range(12))
    )
    assert same[0].zero.mean == 0 and same[0].mean.mean == 0


def _manifest(sweep, dictionaries=()):
    from saelib.dictionaries.manifest import Manifest

    data = {"train_tokens": 8, "heldout_tokens": 4, "context_length": 2}
    return Manifest.from_json(
        {
            "model": {"name": "m", "weights_sha256": "0"},
            "dictionaries": list(dictionaries),
            "sweep": sweep,
            "chosen": {},
            "data": data,
            "hygiene": {"rule": "", "per_hook": []},
        }
    )


def _row(run, alpha, l0, **kw):
    return {
        "run": run,
        "alpha": alpha,
        "l0": l0,
        "fvu": 0.1,
        "ce_recovered": 0.9,
        "ce_recovered_mean": 0.8,
        "kl": 0.1,
        "dead_fraction": 0.0,
        "dense_fraction": 0.0,
        "dead_tokens": 10,
        "eval_tokens": 10,
        "ratio": 8.0,
        "hook": "blocks.14.hook_resid_post",
        "architecture": run.split("-")[1],
        **kw,
    }


def test_the_matched_l0_table_picks_the_member_nearest_each_target_and_flags_misses():
    from saelib.dictionaries.release_comparison import ladder_table, matched_l0_table, papers_only

    sweep = [_row("resid14-topk-r8", k, k) for k in (16.0, 32.0, 64.0)]
    sweep += [_row("resid14-tied-r8", a, l0) for a, l0 in ((1e-3, 70.0), (2e-3, 40.0), (4e-3, 15.5))]
    sweep += [_row("resid14-tied-r2", 8.6e-4, 120.0), _row("resid14-topk-ladder", 32.0, 32.0, ratio=2.0, curve=[])]
    manifest = _manifest(sweep)
    table = {(r.architecture, r.target_l0): r for r in matched_l0_table(manifest)}
    assert set(table) == {(a, t) for a in ("tied", "topk") for t in (16.0, 32.0, 64.0)}  # untrained runs absent
    assert table["topk", 32.0].matched and table["topk", 32.0].member == "resid14-topk-r8 k=32"
    assert table["tied", 32.0].l0 == 40.0 and not table["tied", 32.0].matched  # 25% off: flagged, not hidden
    assert table["tied", 16.0].matched and table["tied", 64.0].matched
    assert [r.ratio for r in ladder_table(manifest)] == [2.0]
    assert [r.run for r in papers_only(manifest).sweep] == ["resid14-tied-r2"]
    assert [r["run"] for r in papers_only(manifest).to_json()["sweep"]] == ["resid14-tied-r2"]


def test_the_manifest_is_typed_and_refuses_what_a_string_gets_wrong():
    from saelib.dictionaries.manifest import ManifestError
    from saelib.dictionaries.shipped import load_manifest

    shipped = load_manifest()  # the committed release
    assert shipped.data.context_length == 256 and all(e.sha256 for e in shipped.dictionaries)
    hook = "blocks.20.hook_resid_post"
    assert {e.ratio for e in shipped.find(hook=hook, architecture="tied")} == {2.0, 4.0}
    near = shipped.find(hook=hook, l0=shipped.find(hook=hook)[0].metrics.l0)
    assert near and near == sorted(near, key=lambda e: abs(e.metrics.l0 - near[0].metrics.l0))
    entry = {
        "name": "x",
        "run": "resid14-relu-r8",
        "hook": "h",
        "architecture": "relu",
        "ratio": 8,
        "alpha": 1,
        "d_in": 4,
        "d_sae": 32,
        "sha256": {},
        "metrics": _row("resid14-tied-r8", 1.0, 3.0),
    }
    with pytest.raises(ManifestError, match="architecture 'relu'"):
        _manifest([], [entry])
    with pytest.raises(ManifestError, match="train_precision 'fp8'"):
        from saelib.dictionaries.manifest import ReleaseData

        ReleaseData.from_json(
            {"train_tokens": 1, "heldout_tokens": 1, "context_length": 1, "train_precision": "fp8"}, "m.json"
        )
    with pytest.raises(ManifestError, match="missing field 'l0'"):
        _manifest([{k: v for k, v in _row("resid14-tied-r8", 1.0, 3.0).items() if k != "l0"}])
