"""Counting dead and dense features without reconstructing, against the full reconstruction pass, side by side.

The release evaluates each ensemble's dead and dense features over 1,048,576 training rows
(``saelib.dictionaries.release.evaluate_run``); those counts need only the codes. This times
``reconstruction_metrics`` with ``reconstruct=True`` (encode, decode, squared error: the release's dead count until
now) and ``reconstruct=False`` (encode and count) on the same rows, for a release-sized ensemble (tied, R = 4, four
alphas, d = 576), checks that L0, dead and dense agree exactly, and prints seconds per path and the speed-up.
Rows are Gaussian at the model's width, served from memory: the cost does not depend on their values.

Usage: .venv/bin/python bench/bench_firing_counts.py [--rows 262144] [--ratio 4] [--alphas 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from saelib.dictionaries.metrics import reconstruction_metrics
from saelib.dictionaries.sae import SAEConfig, TiedSAE


class MemoryStore:
    """The part of ``ActivationStore`` that ``reconstruction_metrics`` reads, over a tensor in memory."""

    def __init__(self, x: torch.Tensor):
        self.x, self.config = x, {"model": ""}

    def width(self, hook: str) -> int:
        return self.x.shape[1]

    def batches(self, hook: str, batch_size: int, seed: int = 0, max_rows: int | None = None, row_mask=None):
        yield from self.x[:max_rows].split(batch_size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=262_144)
    ap.add_argument("--ratio", type=float, default=4.0)
    ap.add_argument("--alphas", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2, help="alternating timings per path; the fastest is kept")
    args = ap.parse_args()
    d = 576
    torch.manual_seed(0)
    alphas = tuple(float(a) for a in np.linspace(1e-4, 1e-3, args.alphas))
    sae = TiedSAE(SAEConfig("tied", d, int(d * args.ratio), alphas))
    with torch.no_grad():  # unit rows, N(0, 1) projections: a bias of -1.3 leaves about a tenth of features on
        sae.encoder_bias.fill_(-1.3)
    store = MemoryStore(torch.randn(args.rows, d))
    times = {True: [], False: []}
    results = {}
    for _ in range(args.repeats):
        for reconstruct in (True, False):
            t0 = time.perf_counter()
            results[reconstruct] = reconstruction_metrics(sae, store, "", reconstruct=reconstruct)
            times[reconstruct].append(time.perf_counter() - t0)
    same = all(
        a[k] == b[k] for a, b in zip(results[True], results[False]) for k in ("l0", "dead_fraction", "dense_fraction")
    )
    full, counts = min(times[True]), min(times[False])
    print(
        f"{torch.get_num_threads()} threads; {args.rows:,} rows, d = {d}, {sae.cfg.n_features} features x "
        f"{args.alphas} members; L0 {results[False][0]['l0']:.0f} per member"
    )
    print(f"  encode + decode + error: {full:6.2f} s ({args.rows / full:,.0f} rows/s)")
    print(f"  encode + count only:     {counts:6.2f} s ({args.rows / counts:,.0f} rows/s)")
    print(f"  speed-up {full / counts:.2f}x; L0, dead and dense identical: {same}")


if __name__ == "__main__":
    main()
