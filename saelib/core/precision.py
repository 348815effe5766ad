"""Matmul precision of the two heavy loops (harvest forward passes, SAE training steps).

``"float32"`` computes everything in float32. ``"bfloat16"`` runs the matmuls under ``torch.autocast`` with bfloat16
inputs (float32 accumulation); weights, optimizer state, biases, losses and everything outside the loop stay
float32. Whether that is faster depends on the hardware: on a CPU with native bfloat16 (AVX512-BF16 or AMX) a
bfloat16 matmul ran about 4x faster, a harvest through layer 26 2.7x and a tied SAE step 2.3x; on an AVX2-only CPU
oneDNN emulates it and the same matmul ran 70x *slower* (``bench/bench_precision.py``, both measured on instances
of these machines). ``"auto"`` (``pick_precision``) therefore measures before it chooses. On a GPU it is the usual
mixed precision. Rows harvested in bfloat16 differ from float32 ones by about 0.5-0.8% of their norm at the residual
hooks (1.8% at the MLP hook), far below what an SAE leaves unexplained.
"""

from __future__ import annotations

import contextlib
import time

import torch

PRECISIONS = ("float32", "bfloat16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r} (bfloat16: matmuls under "
                         "torch.autocast, weights and optimizer state in float32)")


def matmul_precision(precision: str, device: str | torch.device) -> contextlib.AbstractContextManager:
    """A context in which matmuls on ``device`` run at ``precision`` (a no-op for float32)."""
    check_precision(precision)
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def bfloat16_speedup(device: str | torch.device = "cpu", repeats: int = 3) -> float:
    """float32 time over bfloat16 time of one matmul of an SAE's shape on ``device``, best of ``repeats`` (under a
    second even where bfloat16 is emulated)."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 576, generator=gen).to(dev), torch.randn(576, 1152, generator=gen).to(dev)

    def best(dtype: torch.dtype) -> float:
        x, y = a.to(dtype), b.to(dtype)
        x @ y  # warm-up: kernel selection, caches
        times = []
        for _ in range(repeats):
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t = time.perf_counter()
            x @ y
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - t)
        return min(times)

    return best(torch.float32) / best(torch.bfloat16)


def pick_precision(requested: str, device: str | torch.device = "cpu", speedup: float | None = None,
                   min_speedup: float = 1.5) -> str:
    """``requested`` if it names a precision; for ``"auto"``, bfloat16 where its matmuls run at least
    ``min_speedup`` times faster than float32 on ``device`` (``speedup``, measured now if not given), else float32,
    so a machine that only emulates bfloat16 keeps the exact path instead of running 70x slower."""
    if requested != "auto":
        if requested not in PRECISIONS:
            raise ValueError(f"precision must be 'auto' or one of {PRECISIONS}, got {requested!r}")
        return requested
    speedup = bfloat16_speedup(device) if speedup is None else speedup
    return "bfloat16" if speedup >= min_speedup else "float32"
