"""Zero- and mean-ablation cost of every MLP layer of the default model: which MLP layer matters enough for an MLP
dictionary's CE loss recovered to be well conditioned (Bricken et al. train theirs on the only MLP of a one-layer
model; here the layer is chosen by this measurement). Writes dictionaries/mlp_ablation.json.

    .venv/bin/python scripts/measure_mlp_ablation.py [--contexts 64] [--mean-contexts 64]

ΔCE per layer is the mean over held-out contexts of CE(ablated) - CE(clean), with its standard error over contexts;
the mean activation comes from other held-out contexts than the ones scored; position 0 is never ablated.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contexts", type=int, default=64, help="held-out contexts scored")
    parser.add_argument("--mean-contexts", type=int, default=64, help="other held-out contexts for the means")
    parser.add_argument("--context-length", type=int, default=256)
    args = parser.parse_args()

    import torch

    from saelib.activations.harvest import corpus_for_model
    from saelib.core.artifacts import atomic_write_json
    from saelib.dictionaries.release import DICTIONARIES_DIR
    from saelib.model.behaviour import ablation_costs
    from saelib.model.hooks import mlp_post
    from saelib.model.loader import load_model, model_name, model_weights_sha256
    from saelib.text.corpus import pack_contexts

    start = time.perf_counter()
    model = load_model()
    corpus = corpus_for_model(model)
    n = args.contexts + args.mean_contexts
    tokens = torch.from_numpy(pack_contexts(corpus, "heldout", args.context_length, n, seed=7).tokens)
    hooks = [mlp_post(layer) for layer in range(model.cfg.n_layers)]
    costs = ablation_costs(model, hooks, tokens[: args.contexts], tokens[args.contexts :])
    ranked = sorted(costs, key=lambda c: c.mean.mean, reverse=True)
    for c in costs:
        print(f"{c.hook:28s} zero {c.zero.mean:+.3f} ± {c.zero.se:.3f}   mean {c.mean.mean:+.3f} ± {c.mean.se:.3f}")
    print(f"most costly under mean ablation: {ranked[0].hook} ({ranked[0].mean.mean:+.3f} nats)")
    atomic_write_json(
        DICTIONARIES_DIR / "mlp_ablation.json",
        {
            "description": "Zero- and mean-ablation dCE (nats) of every MLP layer's hook_post (scripts/measure_mlp_ablation.py)",
            "model": {"name": model_name(model), "weights_sha256": model_weights_sha256(model)},
            "contexts": args.contexts,
            "mean_contexts": args.mean_contexts,
            "context_length": args.context_length,
            "seconds": round(time.perf_counter() - start, 1),
            "layers": [asdict(c) for c in costs],
            "most_costly_mean_ablation": ranked[0].hook,
        },
    )


if __name__ == "__main__":
    main()
