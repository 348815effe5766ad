"""SAE training speed, measured side by side in one run (issue: SAE training, speed).

1. This machine's fp32 matmul peak: a [batch, d] x [d, n] matmul in a loop (the shape SAE training runs).
2. Tied SAE (Cunningham et al.) at R=4 on the default model's width (d=576, 2304 features): activations/s and
   achieved GFLOP/s, counting 10·B·d·n FLOPs per step (encode and decode matmuls forward, three matmuls backward;
   elementwise work not counted), as a fraction of the measured peak (target >= 50%).
3. One-pass multi-alpha training (one ensemble of k alphas) against the same k alphas trained one after another.

Synthetic Gaussian activations are used: speed does not depend on the values. Usage:
  .venv/bin/python bench/bench_sae_training.py [--steps 30] [--batch-size 1024] [--alphas 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import scratch_artifacts  # noqa: E402

from saelib.dictionaries.sae import SAEConfig, TiedSAE  # noqa: E402
from saelib.dictionaries.train import train_step  # noqa: E402


def matmul_peak(b: int, d: int, n: int, reps: int = 30) -> float:
    x, w = torch.randn(b, d), torch.randn(d, n)
    for _ in range(3):
        x @ w
    start = time.perf_counter()
    for _ in range(reps):
        x @ w
    return 2 * b * d * n * reps / (time.perf_counter() - start) / 1e9


def train_time(sae: TiedSAE, batches: list[torch.Tensor]) -> float:
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    train_step(sae, opt, batches[0], 0)  # warm-up
    start = time.perf_counter()
    for i, x in enumerate(batches):
        train_step(sae, opt, x, i + 1)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--d", type=int, default=576)
    ap.add_argument("--ratio", type=float, default=4.0)
    ap.add_argument("--alphas", type=int, default=4)
    ap.add_argument("--store-tokens", type=int, default=32_768, help="0 skips the store-based comparison")
    args = ap.parse_args()
    b, d = args.batch_size, args.d
    n = int(d * args.ratio)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(b, d, generator=gen) for _ in range(args.steps)]

    peak = max(matmul_peak(b, d, n), matmul_peak(b, n, d))
    t1 = train_time(TiedSAE(SAEConfig("tied", d, n, (8.6e-4,))), batches)
    gflops = 10 * b * d * n * args.steps / t1 / 1e9
    print(f"{torch.get_num_threads()} threads; batch {b}, d={d}, n={n} (R={args.ratio:g})")
    print(f"  fp32 matmul peak (measured now):   {peak:7.1f} GFLOP/s")
    print(f"  tied SAE training:                 {gflops:7.1f} GFLOP/s, {b * args.steps / t1:,.0f} activations/s")
    print(f"  training / matmul peak:            {gflops / peak:.2f}x (target >= 0.5)")

    alphas = tuple(float(a) for a in torch.logspace(-4, -2, args.alphas))
    t_ens, t_seq = [], []
    for _ in range(2):  # interleaved repeats, best of each: machine noise hits both alike
        t_ens.append(train_time(TiedSAE(SAEConfig("tied", d, n, alphas)), batches))
        t_seq.append(sum(train_time(TiedSAE(SAEConfig("tied", d, n, (a,))), batches) for a in alphas))
    print(
        f"  {args.alphas} alphas, batches in memory: one pass {min(t_ens):.2f} s, one after another "
        f"{min(t_seq):.2f} s: speed-up {min(t_seq) / min(t_ens):.2f}x"
    )
    if args.store_tokens:
        from_store(alphas, args.store_tokens, args.batch_size, args.ratio)


def from_store(alphas: tuple[float, ...], n_tokens: int, batch_size: int, ratio: float) -> None:
    """The realistic comparison: train_saes reading shuffled batches from an activation store on disk."""
    from saelib.activations.harvest import corpus_for_model, harvest
    from saelib.dictionaries.train import TrainConfig, train_saes
    from saelib.model.loader import load_model
    from saelib.text.corpus import pack_contexts

    hook = "blocks.2.hook_resid_post"
    with scratch_artifacts():
        model = load_model()
        corpus = corpus_for_model(model)
        ctx = pack_contexts(corpus, "train", 256, n_tokens // 256, seed=11)
        store = harvest(model, [hook], ctx, corpus_name=corpus.dir.name, separator_id=corpus.separator, progress=False)

        def run(a: tuple[float, ...]) -> float:
            start = time.perf_counter()
            train_saes(
                store,
                TrainConfig(hook, ratios=(ratio,), alphas=a, batch_size=batch_size, checkpoint_every=10**9),
                progress=False,
            )
            return time.perf_counter() - start

        t_ens, t_seq = [], []
        for rep in range(2):
            shift = (rep * 1e-9,)  # a new config each repeat, so nothing is served from the cache
            t_ens.append(run(tuple(a + shift[0] for a in alphas)))
            t_seq.append(sum(run((a + shift[0],)) for a in alphas))
        print(
            f"  {len(alphas)} alphas, {store.n_rows:,} activations from a store on disk: one pass "
            f"{min(t_ens):.1f} s, one after another {min(t_seq):.1f} s: speed-up {min(t_seq) / min(t_ens):.2f}x"
        )


if __name__ == "__main__":
    main()
