"""float32 against bfloat16 matmuls (``saelib.core.precision``), measured side by side in one run: what the release
gains by harvesting its training store and training its SAEs with bfloat16 matmuls, and what it costs in accuracy.

1. A matmul of the SAE's shape ([512, 576] x [576, 2304]): GFLOP/s in each precision and the ratio.
2. Harvest of the release hooks (residual layers 2, 8, 14, 20, 26 and the MLP of layer 14) through layer 26, same
   contexts, with ``saelib.activations.harvest`` (float16 rows to disk): tokens/s in each precision and the ratio;
   how far the bfloat16 rows are from the float32 ones (relative L2 error per row, median and 99th percentile).
3. One training step (``saelib.dictionaries.train.train_step``) of a release ensemble, batch 512: the tied R = 4 sweep
   (d = 576, 4 members) and the untied MLP SAE (d = 1536, 3,072 features, 2 members): ms per step and the ratio.

Interleaved repeats, best of each, so machine noise hits both precisions alike. What it does to the dictionaries'
quality is measured on real activations in docs/release.md, "Precision" (held-out FVU of the same run in both
precisions).
Usage: .venv/bin/python bench/bench_precision.py [--contexts 16] [--steps 15] [--force]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import scratch_artifacts  # noqa: E402

from saelib.core.precision import PRECISIONS, matmul_seconds  # noqa: E402
from saelib.dictionaries.sae import SAEConfig, TiedSAE, UntiedSAE  # noqa: E402
from saelib.dictionaries.train import train_step  # noqa: E402


def matmul_gflops(precision: str, reps: int = 20) -> float:
    shape = (512, 576, 2304)
    return 2 * np.prod(shape) / matmul_seconds(precision, "cpu", shape, reps) / 1e9


def step_ms(make, precision: str, steps: int) -> float:
    sae = make()
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    x = torch.randn(512, sae.cfg.d_in, generator=torch.Generator().manual_seed(0))
    for s in range(3):
        train_step(sae, opt, x, s + 1, precision=precision)
    start = time.perf_counter()
    for s in range(steps):
        train_step(sae, opt, x, s + 4, precision=precision)
    return (time.perf_counter() - start) / steps * 1e3


def harvests(n_contexts: int) -> None:
    from saelib.activations.harvest import corpus_for_model, harvest
    from saelib.dictionaries.release import release_hooks
    from saelib.model.loader import load_model
    from saelib.text.corpus import pack_contexts

    hooks = release_hooks()
    with scratch_artifacts():
        model = load_model()
        corpus = corpus_for_model(model)
        ctx = pack_contexts(corpus, "train", 256, n_contexts, seed=11)
        seconds, stores = {p: [] for p in PRECISIONS}, {}
        for rep in range(2):
            for p in PRECISIONS:
                start = time.perf_counter()
                stores[p] = harvest(
                    model,
                    hooks,
                    ctx,
                    corpus_name=corpus.dir.name,
                    separator_id=corpus.separator,
                    progress=False,
                    precision=p,
                    name=f"bench{rep}",
                )
                seconds[p].append(time.perf_counter() - start)
        tok = {p: n_contexts * 256 / min(s) for p, s in seconds.items()}
        print(
            f"harvest through layer 26, {len(hooks)} hooks, {n_contexts} x 256 tokens: float32 {tok['float32']:,.0f} "
            f"tok/s, bfloat16 {tok['bfloat16']:,.0f} tok/s: {tok['bfloat16'] / tok['float32']:.2f}x"
        )
        for hook in hooks:
            a = np.asarray(stores["float32"].activations(hook), dtype=np.float32)
            b = np.asarray(stores["bfloat16"].activations(hook), dtype=np.float32)
            rel = np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(a, axis=1), 1e-12)
            print(
                f"  {hook:28s} bfloat16 rows vs float32: relative error median {np.median(rel):.4f}, "
                f"99th percentile {np.quantile(rel, 0.99):.4f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contexts", type=int, default=16, help="contexts of 256 tokens to harvest (0 skips it)")
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument(
        "--force",
        action="store_true",
        help="run the step and harvest benchmarks even where bfloat16 is emulated (hours on an AVX2-only CPU)",
    )
    args = ap.parse_args()
    print(f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    flops = {p: max(matmul_gflops(p) for _ in range(2)) for p in PRECISIONS}
    print(
        f"matmul [512, 576] x [576, 2304]: float32 {flops['float32']:.0f} GFLOP/s, bfloat16 "
        f"{flops['bfloat16']:.0f} GFLOP/s: {flops['bfloat16'] / flops['float32']:.2f}x"
    )
    if flops["bfloat16"] < 0.5 * flops["float32"] and not args.force:
        print(
            "bfloat16 is emulated on this CPU (no AVX512-BF16 / AMX): the release trains in float32 here "
            "(--precision auto); the step and harvest benchmarks would take hours, skipped (--force runs them)"
        )
        return
    ensembles = {
        "tied R = 4, d = 576, 4 members": lambda: TiedSAE(
            SAEConfig("tied", 576, 2304, (0.0, 2.5e-4, 4.6e-4, 8.6e-4)), 1
        ),
        "untied MLP, d = 1536, 3,072 features, 2 members": lambda: UntiedSAE(
            SAEConfig("untied", 1536, 3072, (1.0, 3.3)), 1
        ),
    }
    for name, make in ensembles.items():
        ms = {p: [] for p in PRECISIONS}
        for _ in range(2):
            for p in PRECISIONS:
                ms[p].append(step_ms(make, p, args.steps))
        best = {p: min(v) for p, v in ms.items()}
        print(
            f"training step, {name}, batch 512: float32 {best['float32']:.0f} ms, bfloat16 "
            f"{best['bfloat16']:.0f} ms: {best['float32'] / best['bfloat16']:.2f}x"
        )
    if args.contexts:
        harvests(args.contexts)


if __name__ == "__main__":
    main()
