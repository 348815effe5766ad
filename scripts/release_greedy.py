"""Run notebook 03's greedy elimination once and ship it: dictionaries/baselines/greedy-ioi.json.

    .venv/bin/python scripts/release_greedy.py              # the default profile's case (layer 26, 16 prompts)
    .venv/bin/python scripts/release_greedy.py --layer 20

The case is built exactly as notebook 03 builds it (the profile's IOI prompts, the first ``n_prompts`` patched, the
first ``greedy_prompts`` of those searched; the sparsest release R = 4 SAE of the layer), and the search is the
notebook's own ``saelib.experiments.patching.greedy_elimination``. Notebook 03 replays the shipped feature sets on the
live model (``saelib.experiments.greedy``) and refuses a file made for another case. About 4 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", type=int, default=26, help="the deepest layer notebook 03 patches (its scan rule)")
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()

    import torch

    from saelib import dictionaries
    from saelib.baselines.decompositions import sae_decomposition
    from saelib.core.profiles import get_profile
    from saelib.experiments import patching as P
    from saelib.experiments.greedy import greedy_key, greedy_path, write_greedy
    from saelib.model import load_model, model_name, resid_post
    from saelib.model.loader import model_weights_sha256
    from saelib.text.tasks import make_ioi_prompts

    t0 = time.perf_counter()
    profile = get_profile(args.profile)
    sizes = profile.ioi_patching
    torch.manual_seed(profile.seed)
    model = load_model(device=profile.device)
    prompts = make_ioi_prompts(model.tokenizer, profile.ioi_prompts, seed=profile.seed)
    pairs_all = P.ioi_pairs(model.tokenizer, prompts)
    pairs = pairs_all.subset(range(sizes.n_prompts))
    clean = P.residuals(model, pairs_all.clean, pairs_all.lengths, [args.layer])[0]
    clean = {k: v[: sizes.n_prompts, : pairs.clean.shape[1]] for k, v in clean.items()}
    cf = P.residuals(model, pairs.counterfactual, pairs.lengths, [args.layer])[0]
    case = P.prepare_case(model, pairs, args.layer, cache=(clean, cf))
    saes = dictionaries.release_sweep(resid_post(args.layer), ratio=4.0, model_name=model_name(model))
    saes.pop(0.0)
    alpha = max(saes)  # the sparsest: fewest active features, as notebook 03 chooses
    small = case.subset(range(sizes.greedy_prompts))
    small_fd = P.feature_deltas(small, sae_decomposition(saes[alpha], f"SAE α={alpha:.2g}"))
    print(
        f"layer {args.layer}, {small_fd.name}, {sizes.greedy_prompts} prompts, {int(small_fd.active.sum())} active "
        f"features, thresholds {list(sizes.greedy_thresholds)}",
        flush=True,
    )
    start = time.perf_counter()
    table = P.greedy_elimination(small, small_fd, sizes.greedy_thresholds, seed=profile.seed)
    seconds = time.perf_counter() - start
    key = greedy_key(small, small_fd, model_weights_sha256(model), sizes.greedy_thresholds, profile.seed)
    write_greedy(greedy_path(), key, table, seconds)
    print(table[["threshold", "n_features", "kl", "edit"]].round(4).to_string(index=False))
    print(f"search {seconds:.0f} s, total {time.perf_counter() - t0:.0f} s; wrote {greedy_path()}")


if __name__ == "__main__":
    main()
