"""Fit the ICA baselines that notebooks 02 and 03 load, and write them to dictionaries/baselines/ with a manifest.

    .venv/bin/python scripts/release_baselines.py                        # every residual layer the notebooks use
    .venv/bin/python scripts/release_baselines.py --hooks blocks.14.hook_resid_post --rows 65536

The rows come from the default profile's training store (the one notebook 01 harvests and notebooks 02 and 03 draw
their PCA sample from; harvested here if missing). Each hook's fit is written as soon as it finishes, so an
interrupted run keeps the layers already done; rerunning refits only the hooks named (default: all).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hooks", nargs="*", help="hooks to fit (default: the release's residual layers)")
    parser.add_argument("--rows", type=int, default=32_768, help="training rows per hook (the paper: about 2M)")
    parser.add_argument("--max-iter", type=int, default=500, help="iterations at most (sklearn's FastICA: 200)")
    parser.add_argument("--tol", type=float, default=1e-4, help="FastICA's stopping tolerance (sklearn's default)")
    parser.add_argument(
        "--solver",
        choices=["picard", "fastica"],
        default="picard",
        help="picard: Picard-O on FastICA's objective, stopped by FastICA's rule (converges at "
        "d = 576); fastica: sklearn's fixed-point iteration, as the paper's code",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip-done", action="store_true", help="leave hooks that already have a converged fit of the same settings"
    )
    args = parser.parse_args()

    from saelib.activations.harvest import harvest_profile
    from saelib.baselines.shipped import fit_release_ica, shipped_ica_info, write_shipped_ica
    from saelib.core.profiles import get_profile
    from saelib.dictionaries.release import RESID_LAYERS
    from saelib.model.hooks import mlp_post, resid_post
    from saelib.model.loader import load_model, model_name, model_weights_sha256

    t0 = time.perf_counter()
    profile = get_profile("default")
    hooks = args.hooks or [resid_post(layer) for layer in RESID_LAYERS]
    model = load_model()
    # the same store (same hooks, same key) notebooks 01-03 use, so nothing is harvested twice
    store_hooks = [resid_post(layer) for layer in profile.sae.layers] + [mlp_post(profile.sae.mlp_layer)]
    unknown = set(hooks) - set(store_hooks)
    if unknown:
        parser.error(f"hooks {sorted(unknown)} are not in the default store; choose among {store_hooks}")
    store = harvest_profile(model, store_hooks, profile, split="train")
    done = {}
    if args.skip_done:
        try:
            done = {e.hook: e for e in shipped_ica_info()}
        except FileNotFoundError:
            pass
    for hook in hooks:
        prev = done.get(hook)
        if (
            prev
            and prev.converged
            and (prev.rows, prev.max_iter, prev.tol, prev.seed, prev.store, prev.solver)
            == (args.rows, args.max_iter, args.tol, args.seed, store.dir.name, args.solver)
        ):
            print(f"[{time.perf_counter() - t0:6.0f}s] {hook}: kept ({prev.n_iter} iterations)", flush=True)
            continue
        tensors, entry = fit_release_ica(
            store,
            hook,
            args.rows,
            args.seed,
            args.max_iter,
            args.tol,
            model=model_name(model),
            model_sha256=model_weights_sha256(model),
            solver=args.solver,
        )
        info = write_shipped_ica(tensors, entry)
        print(
            f"[{time.perf_counter() - t0:6.0f}s] {hook}: {info.solver}, {info.rows:,} rows, {info.n_iter} iterations "
            f"({'converged' if info.converged else 'NOT converged'}: final change {info.final_change:.2e} vs "
            f"tol {info.tol:g}; median {info.median_change:.2e}, {info.stable_share:.0%} of components settled), "
            f"{info.seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
