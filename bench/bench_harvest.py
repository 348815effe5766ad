"""Harvest throughput and memory, measured side by side in one run (issue: foundation, speed and memory).

1. Throughput on the default model for one residual hook (default blocks.11.hook_resid_post), same contexts:
   - plain:  bridge forward with stop_at_layer (no hooks, no disk),
   - naive:  Hugging Face full-depth forward with output_hidden_states=True, keeping the one layer,
   - harvest: saelib.activations.harvest (run_with_cache + stop_at_layer + streaming float16 rows to disk).
   Prints tokens/s and the ratios harvest/plain (target >= 0.9) and harvest/naive (target >= 1.8).
2. Peak memory of the harvest alone: for each of ``--memory-tokens`` (default 65,536, 262,144 and 1,048,576
   tokens of blocks.0.hook_resid_post) a fresh subprocess loads the model, records its peak (``VmHWM``, which a
   child does not inherit, unlike ``ru_maxrss``), harvests, and records its peak again, against the 4 GiB target.
   Whether memory grows with the number of tokens shows in the column of peaks.

Usage: .venv/bin/python bench/bench_harvest.py [--layer 11] [--contexts 32] [--memory-tokens 65536 1048576]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import peak_rss_gib, scratch_artifacts  # noqa: E402

from saelib.activations.harvest import corpus_for_model, harvest  # noqa: E402
from saelib.model.hooks import resid_post  # noqa: E402
from saelib.model.loader import load_model  # noqa: E402
from saelib.text.corpus import pack_contexts  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def throughput(layer: int, n_contexts: int, context_length: int, batch_size: int) -> None:
    model = load_model()
    hf = model.original_model
    corpus = corpus_for_model(model)
    ctx = pack_contexts(corpus, "train", context_length, n_contexts, seed=123)
    tokens = torch.from_numpy(ctx.tokens)
    hook = resid_post(layer)
    n_tok = tokens.numel()

    @torch.inference_mode()
    def plain():
        for b in tokens.split(batch_size):
            model(b, stop_at_layer=layer + 1)

    @torch.inference_mode()
    def naive():
        kept = []
        for b in tokens.split(batch_size):
            kept.append(hf(b, output_hidden_states=True).hidden_states[layer + 1].half().numpy())

    def harvested():
        with scratch_artifacts():
            harvest(model, [hook], ctx, corpus_name=corpus.dir.name, batch_size=batch_size, progress=False)

    plain()  # warm-up (allocator, threads)
    times = {"plain": [], "naive": [], "harvest": []}
    for _ in range(2):  # interleaved repeats: machine load affects all three alike
        times["plain"].append(timed(plain))
        times["harvest"].append(timed(harvested))
        times["naive"].append(timed(naive))
    best = {k: min(v) for k, v in times.items()}
    tps = {k: n_tok / v for k, v in best.items()}
    print(
        f"throughput, {hook}, {n_contexts} contexts x {context_length} tokens, batch {batch_size}, "
        f"{torch.get_num_threads()} threads (best of 2):"
    )
    for k in ("plain", "harvest", "naive"):
        print(f"  {k:8s} {tps[k]:8.0f} tokens/s")
    print(f"  harvest / plain stopped at layer {layer}: {tps['harvest'] / tps['plain']:.2f}x (target >= 0.9)")
    print(f"  harvest / naive full depth + hidden states: {tps['harvest'] / tps['naive']:.2f}x (target >= 1.8)")


def memory_child(n_tokens: int, context_length: int) -> None:
    start = time.perf_counter()
    model = load_model()
    load_s, after_load = time.perf_counter() - start, peak_rss_gib()
    corpus = corpus_for_model(model)
    ctx = pack_contexts(corpus, "train", context_length, -(-n_tokens // context_length), seed=7)
    start = time.perf_counter()
    store = harvest(
        model, ["blocks.0.hook_resid_post"], ctx, corpus_name=corpus.dir.name, batch_size=16, progress=False
    )
    dt = time.perf_counter() - start
    peak = peak_rss_gib()
    print(
        f"  {store.n_rows:>10,} tokens: peak {peak:.2f} GiB ({peak / 4:.2f}x the 4 GiB target); after loading "
        f"the model ({load_s:.0f} s) {after_load:.2f} GiB; harvest {store.n_rows / dt:.0f} tokens/s",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", type=int, default=11)
    ap.add_argument("--contexts", type=int, default=32)
    ap.add_argument("--context-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--memory-tokens", type=int, nargs="*", default=[65_536, 262_144, 1_048_576])
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        return memory_child(args.memory_tokens[0], args.context_length)
    if args.contexts:
        throughput(args.layer, args.contexts, args.context_length, args.batch_size)
    if args.memory_tokens:
        print("memory of the harvest alone (a fresh process per row; VmHWM), blocks.0.hook_resid_post:")
    for n in args.memory_tokens:
        with scratch_artifacts():  # each store is written to a throwaway folder
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--memory-child",
                    "--memory-tokens",
                    str(n),
                    "--context-length",
                    str(args.context_length),
                ],
                check=True,
            )


if __name__ == "__main__":
    main()
