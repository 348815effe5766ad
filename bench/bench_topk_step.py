"""TopK training step: saelib's TopK SAE (sparse decoding with embedding_bag) against SAELens's TopKTrainingSAE on
the same shapes, side by side in one process: d_in 576, R = 8 (4,608 latents), k = 32, batch 4,096, Adam, float32,
with a dead-latent mask so both compute their AuxK loss. Prints the median step time of each and the ratio.

    .venv/bin/python bench/bench_topk_step.py [--steps 10] [--batch 4096]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def saelib_step(d: int, n: int, k: int, batch: int):
    from saelib.dictionaries.sae import SAEConfig, TopKSAE

    sae = TopKSAE(SAEConfig("topk", d, n, (float(k),), dead_after_tokens=1))
    sae.rows_since_fired[0, : n // 10] = 10  # a tenth of the latents dead: the AuxK loss runs
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)

    def step(x: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        sae.loss_terms(x)["loss"].sum().backward()
        sae.before_step()
        opt.step()
        sae.after_step()

    return step


def saelens_step(d: int, n: int, k: int, batch: int):
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import TrainStepInput

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=n, k=k, device="cpu"))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    dead = torch.zeros(n, dtype=torch.bool)
    dead[: n // 10] = True

    def step(x: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        out = sae.training_forward_pass(TrainStepInput(x, {}, dead, 0, False))
        out.loss.backward()
        opt.step()

    return step


def median_seconds(step, x: torch.Tensor, steps: int) -> float:
    step(x)  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args()
    d, n, k = 576, 8 * 576, 32
    torch.manual_seed(0)
    x = torch.randn(args.batch, d)
    ours = median_seconds(saelib_step(d, n, k, args.batch), x, args.steps)
    theirs = median_seconds(saelens_step(d, n, k, args.batch), x, args.steps)
    print(
        json.dumps(
            {
                "shape": {"d_in": d, "d_sae": n, "k": k, "batch": args.batch},
                "threads": torch.get_num_threads(),
                "saelib_s": round(ours, 4),
                "saelens_s": round(theirs, 4),
                "saelens_over_saelib": round(theirs / ours, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
