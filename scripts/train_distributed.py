"""Train SAEs on a harvested activation store across several processes (see saelib.dictionaries.distributed).

    # one config per rank (the paper's split): here one hook per rank, each cached as a one-process run would be
    torchrun --standalone --nproc_per_node=2 scripts/train_distributed.py --store artifacts/activations/harvest-... \\
        --hooks blocks.8.hook_resid_post blocks.14.hook_resid_post --alphas 1e-3 2.15e-3 --mode per-rank
    # one dictionary, data parallel: each rank trains on its share of every batch, gradients summed over ranks
    torchrun --standalone --nproc_per_node=2 scripts/train_distributed.py --store ... \\
        --hooks blocks.14.hook_resid_post --ratios 8 --alphas 1e-3 --mode data-parallel

CPU processes talk over gloo; with --device cuda each rank takes the GPU of its local rank and NCCL. Without
torchrun the script trains in one process. With --json, rank 0 writes the result folders (one per config) there.
Run it with the project's environment: .venv/bin/torchrun.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from saelib.activations.store import ActivationStore  # noqa: E402
from saelib.core.artifacts import atomic_write_json  # noqa: E402
from saelib.dictionaries.distributed import init_from_env, train_per_rank  # noqa: E402
from saelib.dictionaries.train import TrainConfig, train_saes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, type=Path, help="a finished activation store folder")
    ap.add_argument("--hooks", nargs="+", required=True)
    ap.add_argument("--mode", choices=["per-rank", "data-parallel"], default="per-rank")
    ap.add_argument("--architecture", choices=["tied", "untied"], default="tied")
    ap.add_argument("--ratios", nargs="+", type=float, default=[2.0])
    ap.add_argument("--alphas", nargs="+", type=float, default=[8.6e-4])
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resample", action="store_true", help="Bricken et al.'s dead-feature resampling (untied)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="rank 0 writes {hook: result folder} here")
    args = ap.parse_args()
    if not (args.store / "config.json").exists():
        sys.exit(
            f"{args.store} is not an activation store (no config.json): pass a folder under "
            "artifacts/activations/ that a harvest finished"
        )
    store = ActivationStore(args.store)
    group = init_from_env(args.device)
    cfgs = [
        TrainConfig(
            hook,
            architecture=args.architecture,
            ratios=tuple(args.ratios),
            alphas=tuple(args.alphas),
            batch_size=args.batch_size,
            lr=args.lr,
            epochs=args.epochs,
            seed=args.seed,
            resample=args.resample,
            device=args.device,
        )
        for hook in args.hooks
    ]
    if args.mode == "per-rank":
        results = train_per_rank(store, cfgs, group)
    else:
        results = [train_saes(store, cfg, data_parallel=group) for cfg in cfgs]
    if args.json and (group is None or group.writer):
        atomic_write_json(args.json, {cfg.hook: str(res.directory) for cfg, res in zip(cfgs, results)})
    if group is None or group.writer:
        print(
            json.dumps(
                {
                    "ranks": 1 if group is None else group.world,
                    "mode": args.mode,
                    "seconds": {cfg.hook: round(res.seconds, 2) for cfg, res in zip(cfgs, results)},
                }
            )
        )
    if group is not None:
        import torch.distributed as dist

        group.barrier()  # leave together: a rank tearing gloo down while its peer still runs has aborted (once, rarely)
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
