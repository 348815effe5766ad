"""Data-parallel SAE training (saelib.dictionaries.distributed) on CPU: activations/s for one process and for
two processes under torchrun (gloo), measured side by side in one run, and their ratio.

Every rank runs the training step of ``saelib.dictionaries.train`` on its share of each batch and the gradients are
summed over ranks. The one-process run uses all the machine's threads; under torchrun each process gets its share
of them, so the ratio says what splitting the same cores across processes costs or gains (on a node with one GPU
per rank the same code path scales with the number of GPUs instead). Usage:
  .venv/bin/python bench/bench_distributed.py [--steps 40] [--batch-size 2048] [--ratio 4] [--nproc 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from saelib.dictionaries.distributed import init_from_env  # noqa: E402
from saelib.dictionaries.sae import SAEConfig, TiedSAE  # noqa: E402
from saelib.dictionaries.train import train_step  # noqa: E402


def worker(args: argparse.Namespace) -> None:
    group = init_from_env("cpu")
    d, n, b = args.width, int(args.width * args.ratio), args.batch_size
    sae = TiedSAE(SAEConfig("tied", d, n, (8.6e-4,)), seed=0)  # the same initial weights on every rank
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(b, d, generator=gen) for _ in range(args.steps + 2)]  # every rank reads the same

    def run(x: torch.Tensor, step: int) -> None:
        train_step(sae, opt, x if group is None else group.shard(x), step, 1.0, group, len(x))

    for i in range(2):  # warm-up
        run(batches[i], i + 1)
    start = time.perf_counter()
    for i, x in enumerate(batches[2:]):
        run(x, i + 3)
    seconds = time.perf_counter() - start
    if group is None or group.writer:
        print(
            json.dumps(
                {
                    "ranks": 1 if group is None else group.world,
                    "threads": torch.get_num_threads(),
                    "activations_per_s": b * args.steps / seconds,
                }
            )
        )
    if group is not None:
        torch.distributed.destroy_process_group()


def launch(args: argparse.Namespace, nproc: int) -> dict:
    common = [
        str(Path(__file__).resolve()),
        "--worker",
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--width",
        str(args.width),
        "--ratio",
        str(args.ratio),
    ]
    env = dict(os.environ)
    if nproc == 1:
        cmd = [sys.executable, *common]
    else:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *common]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--width", type=int, default=576)
    ap.add_argument("--ratio", type=float, default=4.0)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    print(
        f"tied SAE, d={args.width}, R={args.ratio:g}, batch {args.batch_size}, {args.steps} steps, "
        f"{os.cpu_count()} CPU cores"
    )
    one, many = [], []
    for _ in range(2):  # interleaved repeats, best of each: machine noise hits both alike
        one.append(launch(args, 1))
        many.append(launch(args, args.nproc))
    best_one = max(r["activations_per_s"] for r in one)
    best_many = max(r["activations_per_s"] for r in many)
    print(f"  1 process ({one[0]['threads']} threads):            {best_one:10,.0f} activations/s")
    print(
        f"  {args.nproc} processes, data parallel ({many[0]['threads']} thread(s) each): "
        f"{best_many:10,.0f} activations/s"
    )
    print(f"  ratio {args.nproc} processes / 1: {best_many / best_one:.2f}x")


if __name__ == "__main__":
    main()
