"""Training across processes with ``torch.distributed`` (launched by ``torchrun``): gloo on CPUs, NCCL on GPUs.

Two ways to split the work, as ``scripts/train_distributed.py`` exposes them:

- **one config per rank** (``train_per_rank``), the paper's split (Cunningham et al. trained one ensemble per GPU):
  rank r trains configs r, r + world, ... with ``train_saes``, each cached under its own key as in a one-process
  run. A dictionary therefore does not depend on the number of ranks at all: it is the very artifact a one-process
  run of the same config writes.
- **data parallel** (``DataParallel``), for one dictionary too large or too slow for one device: every rank reads the
  same shuffled batches and trains on its share of each (rows rank, rank + world, ...); gradients are summed across
  ranks, each weighted by its share of the batch, so every rank takes the Adam step a one-process run takes on the
  whole batch, up to the order of floating-point sums. Dead-feature bookkeeping is reduced too (a feature fired if
  it fired on any rank), so resampling decides the same on every rank. What differs from one process: the summation
  order of gradients (float32 rounding, about 1e-7 relative per step) and the logged MSE / L0 history, which each
  rank measures on its own share (rank 0's is kept). Only rank 0 writes checkpoints and results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

Tensor = torch.Tensor


@dataclass(frozen=True)
class DataParallel:
    """This process's place in an initialised ``torch.distributed`` group."""

    rank: int
    world: int

    @classmethod
    def current(cls) -> "DataParallel":
        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised: launch with torchrun and call init_from_env()")
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def writer(self) -> bool:
        return self.rank == 0

    def shard(self, x: Tensor) -> Tensor:
        """This rank's rows of a batch that every rank read identically."""
        return x[self.rank :: self.world]

    def reduce_grads(self, params, n_local: int, n_global: int) -> None:
        """Sum each gradient over ranks, weighted by each rank's share of the batch: the gradient of the mean loss
        over the whole batch (a rank without rows contributes zeros)."""
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            p.grad.mul_(n_local / n_global)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)

    def any_rank(self, mask: Tensor) -> Tensor:
        """Elementwise OR of a bool tensor over ranks."""
        as_int = mask.to(torch.int32)
        dist.all_reduce(as_int, op=dist.ReduceOp.MAX)
        return as_int.bool()

    def barrier(self) -> None:
        dist.barrier()


def init_from_env(device: str = "cpu") -> DataParallel | None:
    """Join the process group torchrun describes in the environment (gloo for CPU, NCCL for CUDA); ``None`` when
    not launched by torchrun (one process). On CUDA each rank takes the GPU of its local rank."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
    return DataParallel.current()


def train_per_rank(store, cfgs: list, group: DataParallel | None, progress: bool = True) -> list:
    """Train ``cfgs`` (``TrainConfig``s) split over the ranks, one after another on each rank; returns every
    config's ``TrainResult`` on every rank, in the order given. Each result is cached under the same key as a
    one-process ``train_saes`` of that config."""
    from saelib.dictionaries.train import train_saes

    if group is None:
        return [train_saes(store, cfg, progress=progress) for cfg in cfgs]
    for cfg in cfgs[group.rank :: group.world]:
        train_saes(store, cfg, progress=progress and group.writer)
    group.barrier()  # every config is now DONE on disk; loading it costs no training
    return [train_saes(store, cfg, progress=False) for cfg in cfgs]
