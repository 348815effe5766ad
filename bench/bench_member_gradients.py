"""One training step of an ensemble on a CPU, two ways, side by side in one run: the members' gradients from leaf
copies of their parameter slices (what ``saelib.dictionaries.train.train_step`` does) against plain autograd through
slices of the shared tensors (what it did before: each member's backward zero-fills a full-size gradient and the
members' gradients are added up). The weights they reach are bit-identical
(tests/unit/dictionaries/test_train.py); only the time differs. Shapes of the release's ensembles: tied R = 4 on the residual stream (d = 576, 4 members) and Bricken
et al.'s untied MLP SAE (d = 1536, 3,072 features, 2 members), batch 512. Usage:
  .venv/bin/python bench/bench_member_gradients.py [--steps 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from saelib.dictionaries.sae import SAE, SAEConfig, TiedSAE, UntiedSAE  # noqa: E402
from saelib.dictionaries.train import train_step  # noqa: E402


def step_through_slices(sae: SAE, opt: torch.optim.Adam, x: torch.Tensor, step: int) -> None:
    """The reference: autograd through each member's slice of the shared parameters."""
    opt.zero_grad(set_to_none=True)
    for i in range(sae.cfg.n_models):
        sae.loss_terms(x, i)["loss"].sum().backward()
    sae.before_step()
    opt.step()
    sae.after_step()


def ms_per_step(make, step_fn, batches: list[torch.Tensor]) -> float:
    sae = make()
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    step_fn(sae, opt, batches[0], 1)  # warm-up: allocations, Adam state
    start = time.perf_counter()
    for i, x in enumerate(batches[1:]):
        step_fn(sae, opt, x, i + 2)
    return (time.perf_counter() - start) / (len(batches) - 1) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best of each is reported")
    args = ap.parse_args()
    tied = SAEConfig("tied", 576, 2304, (0.0, 2.2e-4, 4.6e-4, 8.6e-4))
    untied = SAEConfig("untied", 1536, 3072, (1.0, 3.3))
    ensembles = {
        "tied R = 4, d = 576, 4 members": (lambda: TiedSAE(tied, 1), 576),
        "untied MLP, d = 1536, 3,072 features, 2 members": (lambda: UntiedSAE(untied, 1), 1536),
    }
    print(f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}, batch 512")
    for name, (make, d) in ensembles.items():
        gen = torch.Generator().manual_seed(0)
        batches = [torch.randn(512, d, generator=gen) for _ in range(args.steps + 1)]
        times = {"leaf slices": [], "through slices": []}
        for _ in range(args.repeats):
            times["leaf slices"].append(ms_per_step(make, train_step, batches))
            times["through slices"].append(ms_per_step(make, step_through_slices, batches))
        best = {k: min(v) for k, v in times.items()}
        print(
            f"{name}: leaf slices {best['leaf slices']:.0f} ms a step, through slices "
            f"{best['through slices']:.0f} ms: {best['through slices'] / best['leaf slices']:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
