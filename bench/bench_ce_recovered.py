"""CE loss recovered (notebook 01, the release evaluation): patched runs that start from the cached residual and run
only the blocks after the hook, against a full hooked forward per patched run, side by side.

On SmolLM2 with the shipped chosen dictionary of each layer: one clean run, zero ablation and ``--members`` copies of
the reconstruction splice (an ensemble's members each cost one patched run), on ``--contexts`` held-out contexts of
256 tokens. Prints seconds per path, the speed-up, and the largest difference in CE between the two paths.

Usage: .venv/bin/python bench/bench_ce_recovered.py [--layers 2 14 26] [--contexts 4] [--members 4]
"""

from __future__ import annotations

import argparse
import time

import torch

from saelib import dictionaries
from saelib.activations.harvest import corpus_for_model
from saelib.dictionaries.metrics import next_token_ce, patch_runner, kept_positions
from saelib.model import load_model, model_name, resid_post
from saelib.text.corpus import pack_contexts


def full_forward_path(model, tokens, hook, keep, fns):
    def run(fn):
        return model.run_with_hooks(
            tokens, fwd_hooks=[(hook, lambda act, hook=None: torch.where(keep[..., None], fn(act), act))]
        )

    return [model(tokens)] + [run(fn) for fn in fns]


def cached_path(model, tokens, hook, keep, fns):
    clean, run = patch_runner(model, tokens, hook, keep, None)
    return [clean] + [run(fn) for fn in fns]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, nargs="+", default=[2, 14, 26])
    ap.add_argument("--contexts", type=int, default=4)
    ap.add_argument("--members", type=int, default=4)
    args = ap.parse_args()
    model = load_model()
    corpus = corpus_for_model(model)
    tokens = torch.from_numpy(pack_contexts(corpus, "heldout", 256, args.contexts, seed=0).tokens).long()
    keep = kept_positions(tokens, corpus.separator)
    chosen = dictionaries.release_manifest()["chosen"]
    print(f"{args.contexts} contexts x 256 tokens; clean + zero ablation + {args.members} reconstruction splices")
    for layer in args.layers:
        hook = resid_post(layer)
        sae = dictionaries.load_release(chosen[hook], model_name=model_name(model), hook=hook)

        def reconstruct(act):
            return sae.decode(sae.encode(act))

        fns = [torch.zeros_like] + [reconstruct] * args.members
        with torch.no_grad():
            t0 = time.perf_counter()
            want = full_forward_path(model, tokens, hook, keep, fns)
            t_full = time.perf_counter() - t0
            t0 = time.perf_counter()
            got = cached_path(model, tokens, hook, keep, fns)
            t_cached = time.perf_counter() - t0
        diff = max(float((next_token_ce(a, tokens) - next_token_ce(b, tokens)).abs().max()) for a, b in zip(want, got))
        print(
            f"  layer {layer:2d}: full forward {t_full:6.1f} s, from the cached residual {t_cached:6.1f} s, "
            f"speed-up {t_full / t_cached:.2f}x; largest |CE difference| {diff:.1e} nats"
        )


if __name__ == "__main__":
    main()
