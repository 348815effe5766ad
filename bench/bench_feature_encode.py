"""Encoding only the scored features (notebook 02 scores 150 per dictionary) against encoding every feature and
keeping those columns, side by side, as ``feature_activations`` does for each dictionary and layer.

On the shipped chosen dictionary of one layer (tied, R = 2) and a linear baseline of the same size (PCA-like: random
directions, both signs), over ``--rows`` activations in chunks of 8,192 (notebook 02: 131,072 fragment rows). Rows
are Gaussian at the layer's width: the cost does not depend on their values. Prints seconds per path, the speed-up
and the largest absolute difference between the two paths' activations.

Usage: .venv/bin/python bench/bench_feature_encode.py [--layer 14] [--rows 131072] [--features 150]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from saelib import dictionaries
from saelib.baselines.directions import LinearDictionary
from saelib.interp.features import feature_codes
from saelib.model.hooks import resid_post


def encode(dictionary, x: torch.Tensor, cols: torch.Tensor, selected: bool, chunk: int = 8192) -> np.ndarray:
    out = []
    for part in x.split(chunk):
        out.append(
            (feature_codes(dictionary, part, cols) if selected else feature_codes(dictionary, part)[:, cols]).numpy()
        )
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layer", type=int, default=14)
    ap.add_argument("--rows", type=int, default=131_072)
    ap.add_argument("--features", type=int, default=150)
    args = ap.parse_args()
    hook = resid_post(args.layer)
    sae = dictionaries.load_release(dictionaries.release_manifest()["chosen"][hook], hook=hook)
    gen = torch.Generator().manual_seed(0)
    d, n = sae.cfg.d_in, sae.cfg.n_features
    half = torch.linalg.qr(torch.randn(d, d, generator=gen))[0]
    linear = LinearDictionary("PCA-like", torch.cat([half, -half])[:n], torch.zeros(d))
    x = torch.randn(args.rows, d, generator=gen) * 4
    cols = torch.randperm(n, generator=gen)[: args.features]
    print(f"{args.rows:,} rows of width {d}; {args.features} of {n} features")
    for name, dictionary in ((f"tied SAE (chosen, layer {args.layer})", sae), ("linear baseline", linear)):
        times = {}
        for selected in (False, True):
            t0 = time.perf_counter()
            got = encode(dictionary, x, cols, selected)
            times[selected] = time.perf_counter() - t0
            if not selected:
                want = got
        print(
            f"  {name}: every feature then columns {times[False]:5.2f} s, selected columns only "
            f"{times[True]:5.2f} s, speed-up {times[False] / times[True]:.1f}x; largest |difference| "
            f"{np.abs(got - want).max():.1e}"
        )


if __name__ == "__main__":
    main()
