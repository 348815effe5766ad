"""Dead-feature resampling of Bricken et al. (2023), "Towards Monosemanticity", on Anthropic's schedule scaled to
the data budget.

Anthropic trained on 8B activations and resampled at most 4 times, every 200M activations (2.5% of training), a
feature counting as dead if it had not fired during the preceding 100M (half an interval). Scaled literally to a
CPU-sized budget that would resample after a handful of steps, so the schedule keeps its *shape* instead: 4 resamples
at evenly spaced points of the first two thirds of training (leaving the last third for the dictionary to settle),
deadness measured over the preceding half interval. For a resample, as in the paper:

- inputs are drawn with probability proportional to the square of their reconstruction loss (on a sample of the
  data: Anthropic used 819,200 inputs; here ``min(819_200, sample size)``);
- a dead feature's decoder column becomes the chosen input (minus b_d), normalised;
- its encoder row becomes that direction times 0.2 x the mean encoder-row norm of the alive features; its encoder
  bias becomes 0;
- Adam's moment estimates for those parameters are reset to zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from saelib.dictionaries.sae.untied import UntiedSAE


@dataclass(frozen=True)
class ResampleSchedule:
    steps: tuple[int, ...]  # optimizer steps at which to resample
    window: int  # a feature is dead if it has not fired during this many preceding steps

    @staticmethod
    def scaled(total_steps: int, n_resamples: int = 4) -> "ResampleSchedule":
        if total_steps < 4 * (n_resamples + 2):
            return ResampleSchedule((), total_steps)
        interval = (2 * total_steps) // (3 * (n_resamples + 1))
        return ResampleSchedule(tuple(interval * (k + 1) for k in range(n_resamples)), max(1, interval // 2))


@torch.no_grad()
def resample_dead(
    sae: UntiedSAE, optimizer: torch.optim.Adam, dead: torch.Tensor, inputs: torch.Tensor, generator: torch.Generator
) -> int:
    """Resample the features marked in ``dead`` [model, n_features] from ``inputs`` [n, d_in]; returns how many."""
    total = 0
    inputs = inputs * sae.cfg.input_scale  # the SAE's parameters live in the scaled space
    for m in range(sae.cfg.n_models):
        idx = dead[m].nonzero().flatten()
        if len(idx) == 0:
            continue
        x_hat = torch.matmul(torch.relu((inputs - sae.b_dec[m]) @ sae.W_enc[m].T + sae.b_enc[m]), sae.W_dec[m].T)
        loss = (x_hat + sae.b_dec[m] - inputs).pow(2).sum(-1)
        weights = loss.pow(2)
        if not torch.isfinite(weights).all() or weights.sum() <= 0:
            continue
        # drawn on the CPU with its generator (a CUDA draw needs a CUDA generator): the same picks on any device
        pick = torch.multinomial(
            (weights / weights.sum()).cpu(), len(idx), replacement=len(idx) > len(inputs), generator=generator
        ).to(inputs.device)
        directions = inputs[pick] - sae.b_dec[m]
        directions = directions / directions.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        alive = ~dead[m]
        enc_norm = sae.W_enc[m][alive].norm(dim=-1).mean() if alive.any() else torch.tensor(1.0)
        sae.W_dec[m][:, idx] = directions.T
        sae.W_enc[m][idx] = directions * 0.2 * enc_norm
        sae.b_enc[m][idx] = 0.0
        _reset_adam(optimizer, sae, m, idx)
        total += len(idx)
    return total


def _reset_adam(optimizer: torch.optim.Adam, sae: UntiedSAE, m: int, idx: torch.Tensor) -> None:
    for param, sl in ((sae.W_dec, (m, slice(None), idx)), (sae.W_enc, (m, idx)), (sae.b_enc, (m, idx))):
        state = optimizer.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][sl] = 0.0
