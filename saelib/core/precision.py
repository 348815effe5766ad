"""Matmul precision of the two heavy loops (harvest forward passes, SAE training steps).

``"float32"`` computes everything in float32. ``"bfloat16"`` runs the matmuls under ``torch.autocast`` with bfloat16
inputs (float32 accumulation); weights, optimizer state, biases, losses and everything outside the loop stay
float32. Whether that is faster depends on the hardware: on a CPU with native bfloat16 (AVX512-BF16 or AMX) a
bfloat16 matmul ran about 4x faster, a harvest through layer 26 2.7x and a tied SAE step 2.3x; on an AVX2-only CPU
oneDNN emulates it and the same matmul ran about 75x *slower* (``bench/bench_precision.py``, both measured on instances
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
        raise ValueError(
            f"precision must be one of {PRECISIONS}, got {precision!r} (bfloat16: matmuls under "
            "torch.autocast, weights and optimizer state in float32)"
        )


def matmul_precision(precision: str, device: str | torch.device) -> contextlib.AbstractContextManager:
    """A context in which matmuls on ``device`` run at ``precision`` (a no-op for float32)."""
    check_precision(precision)
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def matmul_seconds(
    precision: str, device: str | torch.device = "cpu", shape: tuple[int, int, int] = (256, 576, 1152), repeats: int = 3
) -> float:
    """Best-of-``repeats`` seconds of one float32 [m, k] x [k, n] matmul under ``matmul_precision`` on ``device``
    (the path training takes: autocast's casts included), after one warm-up call."""
    m, k, n = shape
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen).to(dev), torch.randn(k, n, generator=gen).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times = []
    with matmul_precision(precision, dev):
        for i in range(repeats + 1):
            sync()
            start = time.perf_counter()
            a @ b
            sync()
            if i:  # the first call selects kernels and warms caches
                times.append(time.perf_counter() - start)
    return min(times)


def bfloat16_speedup(device: str | torch.device = "cpu", repeats: int = 3) -> float:
    """float32 time over bfloat16 time of an SAE-shaped matmul on ``device`` (under a second even where bfloat16
    is emulated)."""
    return matmul_seconds("float32", device, repeats=repeats) / matmul_seconds("bfloat16", device, repeats=repeats)


def pick_precision(
    requested: str, device: str | torch.device = "cpu", speedup: float | None = None, min_speedup: float = 1.5
) -> str:
    """``requested`` if it names a precision; for ``"auto"``, bfloat16 where its matmuls run at least
    ``min_speedup`` times faster than float32 on ``device`` (``speedup``, measured now if not given), else float32,
    so a machine that only emulates bfloat16 keeps the exact path instead of running ~75x slower."""
    if requested != "auto":
        if requested not in PRECISIONS:
            raise ValueError(f"precision must be 'auto' or one of {PRECISIONS}, got {requested!r}")
        return requested
    speedup = bfloat16_speedup(device) if speedup is None else speedup
    return "bfloat16" if speedup >= min_speedup else "float32"
