"""The paper profile for one layer (the GPU path): harvest ``--tokens`` activations of one residual hook with the model on
``--device``, then train the paper profile's R = 2 sweep on them (one ensemble, every alpha a member, as batched
matmuls on a GPU). Then, on the first ``--compare-rows`` rows, the same training twice side by side: batches
gathered from rows held on the device against batches read from the disk (the same batches, so the same weights:
checked); their ratio is what holding the rows on the device gains. Prints each stage's seconds, throughput and
peak memory (host resident set; on a GPU also torch's peak allocation), and writes them as JSON with ``--json``.

  .venv/bin/python bench/bench_paper_profile.py --json paper-gpu.json          # a GPU: 20,971,520 tokens, layer 14
  .venv/bin/python bench/bench_paper_profile.py --device cpu --tokens 65536 --compare-rows 32768   # a CPU smoke run

The store of the full budget is 20,971,520 x 576 x 2 bytes = 24 GB of float16 on disk (in a scratch folder unless
``--keep``): leave room for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import peak_rss_gib, scratch_artifacts  # noqa: E402

from saelib.activations.harvest import corpus_for_model, harvest_profile  # noqa: E402
from saelib.core.precision import bfloat16_speedup, pick_precision  # noqa: E402
from saelib.dictionaries.release import release_profile  # noqa: E402
from saelib.dictionaries.train import TrainConfig, train_saes  # noqa: E402
from saelib.model.hooks import resid_post  # noqa: E402
from saelib.model.loader import DEFAULT_MODEL, load_model  # noqa: E402


def gpu_peak_gib(device: str, reset: bool = False) -> float | None:
    """torch's peak allocation on a CUDA ``device`` since the last reset, in GiB (None on a CPU)."""
    if torch.device(device).type != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    if reset:
        torch.cuda.reset_peak_memory_stats(device)
    return peak


def stage(name: str, device: str, fn):
    """Run ``fn``; returns (its result, a record of seconds and peak memory)."""
    gpu_peak_gib(device, reset=True)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    record = {
        "stage": name,
        "seconds": time.perf_counter() - start,
        "host_peak_gib": peak_rss_gib(),
        "gpu_peak_gib": gpu_peak_gib(device),
    }
    print(json.dumps(record), flush=True)
    return out, record


def weights(result) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for ens in result.saes.values() for k, v in ens.state_dict().items()}


def run(args: argparse.Namespace) -> dict:
    paper = release_profile("paper")
    profile = replace(paper, harvest_tokens=args.tokens, device=args.device)
    sweep, hook = profile.sae, resid_post(args.layer)
    speedup = bfloat16_speedup(args.device)
    precision = pick_precision(args.precision, args.device, speedup=speedup)
    print(f"device {args.device}, matmul precision {precision} (bfloat16 {speedup:.2f}x float32 here)", flush=True)
    model, load = stage("load model", args.device, lambda: load_model(args.model, device=args.device))
    stage("corpus (tokenized once, then cached)", args.device, lambda: corpus_for_model(model))
    store, harvest = stage(
        "harvest", args.device, lambda: harvest_profile(model, [hook], profile, precision=precision, progress=False)
    )
    harvest |= {
        "tokens": store.n_rows,
        "tokens_per_s": store.n_rows / harvest["seconds"],
        "store_gb": sum(f.stat().st_size for f in store.files()) / 1e9,
    }
    cfg = TrainConfig(
        hook,
        ratios=(sweep.ratio,),
        alphas=sweep.alphas,
        batch_size=sweep.batch_size,
        lr=sweep.lr,
        epochs=sweep.epochs,
        device=args.device,
        precision=precision,
        checkpoint_every=1000,
    )
    full, train = stage(
        "train (rows on the device where they fit)",
        args.device,
        lambda: train_saes(store, cfg, name="paper-full", progress=False),
    )
    members = len(cfg.alphas)
    train |= {
        "rows": full.rows_seen,
        "members": members,
        "activations_per_s": full.rows_seen / train["seconds"],
        "member_activations_per_s": members * full.rows_seen / train["seconds"],
        "rows_on_device": json.loads((full.directory / "DONE.json").read_text())["rows_on_device"],
    }
    small = replace(cfg, max_rows=args.compare_rows)
    held, on_device = stage(
        "train, rows on the device",
        args.device,
        lambda: train_saes(store, small, name="paper-held", progress=False, rows_on_device=True),
    )
    read, from_disk = stage(
        "train, batches read from the disk",
        args.device,
        lambda: train_saes(store, small, name="paper-read", progress=False, rows_on_device=False),
    )
    same = all(torch.equal(a, b) for a, b in zip(weights(held).values(), weights(read).values()))
    result = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(args.device) if torch.device(args.device).type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "precision": precision,
        "bfloat16_speedup": speedup,
        "hook": hook,
        "model": args.model,
        "load": load,
        "harvest": harvest,
        "train": train,
        "rows_on_device_vs_disk": {
            "rows": held.rows_seen,
            "on_device_s": on_device["seconds"],
            "from_disk_s": from_disk["seconds"],
            "speedup": from_disk["seconds"] / on_device["seconds"],
            "identical_weights": same,
        },
    }
    print(
        f"harvest {harvest['tokens']:,} tokens of {hook}: {harvest['seconds']:.0f} s, "
        f"{harvest['tokens_per_s']:,.0f} tokens/s, store {harvest['store_gb']:.1f} GB"
    )
    print(
        f"train {members} members at R = {sweep.ratio:g} on {train['rows']:,} rows: {train['seconds']:.0f} s, "
        f"{train['activations_per_s']:,.0f} activations/s ({train['member_activations_per_s']:,.0f} per member "
        f"summed), rows on the device: {train['rows_on_device']}"
    )
    print(
        f"rows on the device vs read from the disk, {held.rows_seen:,} rows: {on_device['seconds']:.1f} s vs "
        f"{from_disk['seconds']:.1f} s, {result['rows_on_device_vs_disk']['speedup']:.2f}x; identical weights: {same}"
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--layer", type=int, default=14)
    ap.add_argument("--tokens", type=int, default=release_profile("paper").harvest_tokens)
    ap.add_argument("--compare-rows", type=int, default=2_097_152)
    ap.add_argument("--precision", choices=["auto", "bfloat16", "float32"], default="auto")
    ap.add_argument("--keep", action="store_true", help="keep the store and SAEs in artifacts/ (default: scratch)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        ap.error("no CUDA device here: pass --device cpu (with a small --tokens) for a smoke run")
    if args.keep:
        result = run(args)
    else:
        with scratch_artifacts():
            result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
