"""Build the release dictionaries (see saelib.dictionaries.release) and write them to dictionaries/ with a manifest.

    .venv/bin/python scripts/release_dictionaries.py                  # everything (2.4-4 hours on 2 cores; docs/release.md)
    .venv/bin/python scripts/release_dictionaries.py --stage harvest  # only the activation stores
    .venv/bin/python scripts/release_dictionaries.py --only resid20-tied-r4 resid26-tied-r4  # the IOI sweeps
    .venv/bin/python scripts/release_dictionaries.py --only mlp14-untied-r2   # a store through layer 14 only
    .venv/bin/python scripts/release_dictionaries.py --profile paper --only resid14-tied-r2 --planned-hooks
                                             # one layer at the paper's budget on a GPU: a 24 GB store of one hook
    .venv/bin/python scripts/release_dictionaries.py --only mlp14-untied-r2-resampling \
        mlp14-untied-r2-no-resampling        # metrics only: the same MLP SAE where features die, with and without
    .venv/bin/python scripts/release_dictionaries.py --only resid14-tied-r4 resid8-tied-r4 resid2-tied-r4
                                             # metrics only: the R = 4 sweeps below the IOI layers
    .venv/bin/python scripts/release_dictionaries.py --stage mmcs --only resid14-tied-r2 resid14-tied-r4
        # MMCS between a layer's R = 2 and R = 4 members (trained or cached) into the manifest, nothing else

    .venv/bin/python scripts/release_dictionaries.py --plan comparison   # architectures at matched L0, the width
        # ladder, seeds and the MLP layer that matters (saelib.dictionaries.release_comparison); the tied runs are
        # calibrated by a pilot sweep first; --only resid14-tied-r8 runs its pilot too

Every stage is cached by its config and code revision and resumes after an interruption: rerun the same command.
Export merges into dictionaries/manifest.json: runs not named by --only keep their entries and files.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--stage",
        choices=["harvest", "train", "mmcs", "all"],
        default="all",
        help="stop after this stage (train: no evaluation or export; mmcs: train, then write only "
        "the MMCS between R = 2 and R = 4 to the manifest)",
    )
    parser.add_argument(
        "--only", nargs="*", help="train only these runs (names from saelib.dictionaries.release.release_plan)"
    )
    parser.add_argument("--no-export", action="store_true", help="evaluate but do not write dictionaries/")
    parser.add_argument("--ce-contexts", type=int, default=16, help="held-out contexts for CE loss recovered")
    parser.add_argument(
        "--precision",
        choices=["auto", "bfloat16", "float32"],
        default="auto",
        help="matmuls of the training store's harvest and of every training step (evaluation is "
        "always float32); auto: bfloat16 where this machine runs it at least 1.5x faster than "
        "float32 (measured at start), else float32",
    )
    parser.add_argument(
        "--plan",
        choices=["papers", "comparison"],
        default="papers",
        help="papers: the dictionaries the notebooks read (release_plan); comparison: today's "
        "architectures at matched L0, width ladder, seeds, MLP layer (comparison_plan)",
    )
    parser.add_argument(
        "--profile",
        choices=["release", "paper"],
        default="release",
        help="release: 2,097,152 activations per hook on CPU; paper: the paper's budget on a GPU",
    )
    parser.add_argument(
        "--planned-hooks",
        action="store_true",
        help="store only the hooks the runs train on, not every release hook up to the deepest "
        "(the paper profile's store is 24 GB per residual hook; the stores are keyed apart)",
    )
    args = parser.parse_args()

    import torch

    from saelib.activations.harvest import harvest_profile, heldout_profile
    from saelib.core.artifacts import atomic_write_json
    from saelib.core.precision import bfloat16_speedup, pick_precision
    from saelib.dictionaries.release import (
        evaluate_run,
        export_release,
        harvest_hooks,
        hygiene_report,
        merge_mmcs,
        ratio_mmcs,
        release_dir,
        release_plan,
        release_profile,
    )
    from saelib.dictionaries.train import train_saes
    from saelib.model.loader import load_model, model_weights_sha256

    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.0f}s] {msg}", flush=True)

    profile = release_profile(args.profile)
    # an emulated bfloat16 (AVX2-only CPUs) is ~75x slower than float32, a native one ~4x faster: measure, then choose
    speedup = bfloat16_speedup(profile.device) if args.precision == "auto" else None
    precision = pick_precision(args.precision, profile.device, speedup=speedup)
    log(f"matmul precision: {precision}" + (f" (bfloat16 {speedup:.2f}x float32 here)" if speedup else ""))
    from saelib.dictionaries.matched_l0 import TargetL0NotReachedError, calibrated_alphas, member_at_l0
    from saelib.dictionaries.release_comparison import PILOT_EVAL_ROWS, TARGET_L0, calibrated_run, comparison_plan

    make_plan = release_plan if args.plan == "papers" else comparison_plan
    names = {r.name.removesuffix("-pilot") for r in make_plan()} | {r.name for r in make_plan()}
    unknown = set(args.only or ()) - names
    if unknown:
        parser.error(f"unknown run(s) {sorted(unknown)}; runs: {', '.join(sorted(names))}")
    plan = [
        r
        for r in make_plan(profile.device, precision)
        if not args.only or r.name in args.only or r.name.removesuffix("-pilot") in args.only
    ]
    # one store for the whole plan: every release hook up to the deepest layer it trains on (a pass through the
    # deepest layer costs the same for one hook or six), so `--only` runs at layers <= 14 skip layers 15-26
    hooks = harvest_hooks(plan, planned_only=args.planned_hooks)
    model = load_model(device=profile.device)
    train = harvest_profile(model, hooks, profile, split="train", precision=precision)
    log(f"training store {train}")
    heldout = heldout_profile(model, hooks, profile)
    log(f"held-out store {heldout}")
    if args.stage == "harvest":
        return
    hygiene_path = release_dir() / f"hygiene-{train.dir.name}.json"
    if not hygiene_path.exists():
        atomic_write_json(hygiene_path, hygiene_report(train, hooks))
    hygiene = __import__("json").loads(hygiene_path.read_text())
    for row in hygiene:
        log(
            f"hygiene {row['hook']}: top 0.1% of rows hold {row['share_top_0.1pct']:.1%} of sum |x|^2, top 1% "
            f"{row['share_top_1pct']:.1%}; {row['outlier_rows']} outlier rows ({row['outlier_share_of_sq_norm']:.1%})"
        )

    ce_tokens = torch.from_numpy(heldout.tokens[: args.ce_contexts].copy())
    out = None if args.profile == "release" else release_dir() / f"dictionaries-{args.profile}"
    model_sha256 = model_weights_sha256(model)
    trained = {}
    i = -1
    while (i := i + 1) < len(plan):
        run = plan[i]
        log(f"training {run.name}: {run.train.hook}, R={run.train.ratios}, alphas={run.train.alphas}")
        result = train_saes(train, run.train, name=run.name, progress=False)
        log(f"trained {run.name} in {result.seconds:.0f}s on {result.rows_seen:,} rows")
        trained[run.name] = (run, result)
        if args.stage in ("train", "mmcs"):
            continue
        pilot = {"dead_rows": PILOT_EVAL_ROWS, "heldout_rows": PILOT_EVAL_ROWS} if run.name.endswith("-pilot") else {}
        rows = evaluate_run(model, result, run, train, heldout, ce_tokens, **pilot)
        for r in rows:
            log(
                f"  alpha={r['alpha']:.2e}: L0 {r['l0']:.1f}, FVU {r['fvu']:.3f}, CE rec. {r['ce_recovered']:.3f} "
                f"(mean-abl. {r['ce_recovered_mean']:.3f}), KL {r['kl']:.3f}, dead {r['dead_fraction']:.3f}"
            )
        if run.name.endswith("-pilot"):  # the calibrated tied run trains next, at the alphas for the target L0s
            try:
                alphas = calibrated_alphas(rows, TARGET_L0)
            except TargetL0NotReachedError as err:
                log(f"  calibration failed, {run.name.removesuffix('-pilot')} is not trained: {err}")
            else:
                plan.insert(i + 1, calibrated_run(run, alphas))
                log(f"  calibrated alphas for L0 {TARGET_L0}: {', '.join(f'{a:.3g}' for a in alphas)}")
        elif args.plan == "comparison":
            for target in TARGET_L0:
                try:
                    hit = member_at_l0(rows, target)
                    log(f"  L0 {target:g}: alpha {hit['alpha']:.3g} at held-out L0 {hit['l0']:.1f}")
                except TargetL0NotReachedError as err:
                    log(f"  L0 {target:g} NOT matched: {err}")
        if not args.no_export:  # after each run, so a killed release keeps every run it finished
            path = export_release(
                [(run, result, rows)], hygiene, train, heldout, model_sha256, **({"out": out} if out else {})
            )
            log(f"wrote {path}")
    if args.stage == "train":
        return
    # after every run is exported: re-exporting a run drops the MMCS rows computed from its earlier weights
    mmcs_rows = ratio_mmcs(trained, train.dir.name)
    for r in mmcs_rows:
        log(
            f"MMCS {r['small']} -> {r['large']}: {r['mmcs_small_to_large']:.3f} "
            f"(reverse {r['mmcs_large_to_small']:.3f}, "
            f"cos >= 0.9: {r['share_cos_ge_0.9']:.1%}; random control {r['random_control']:.3f})"
        )
    if mmcs_rows and not args.no_export:
        log(f"wrote {merge_mmcs(mmcs_rows, train.config['model'], model_sha256, **({'out': out} if out else {}))}")


if __name__ == "__main__":
    main()
