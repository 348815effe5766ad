"""JumpReLU sparse autoencoder of Rajamanoharan et al. (2024), "Jumping Ahead: Improving Reconstruction Fidelity
with JumpReLU Sparse Autoencoders" (arXiv 2407.14435, sections 3-4), with the L0 penalty toward a target L0 of
dictionary_learning (``dictionary_learning/trainers/jumprelu.py``) and the raw (not log) threshold of SAELens
(``sae_lens/saes/jumprelu_sae.py``):

    z = W_enc (x − b_dec) + b_enc
    f = z · H(z − θ)                    (θ > 0 per latent, so f = JumpReLU_θ(ReLU(z)))
    x̂ = W_dec f + b_dec                 (decoder columns kept at unit norm, as in the untied SAE)
    L = mean_d (x − x̂)² + c · (L0 / L0_target − 1)²,   L0 = mean_batch Σ_j H(z_j − θ_j)

H has no useful derivative; θ learns through straight-through pseudo-derivatives with a rectangle kernel
K(u) = 1[|u| < 1/2] of bandwidth ε (the paper's equations 11-12):

    ∂f/∂θ ≈ −(θ/ε) K((z − θ)/ε),     ∂H(z − θ)/∂θ ≈ −(1/ε) K((z − θ)/ε),     ∂H/∂z = 0.

Each member's target L0 is its entry of ``cfg.alphas``; ε, the initial θ and c are ``cfg.bandwidth``,
``cfg.threshold_init`` and ``cfg.l0_coefficient``, in units of the scaled pre-activations (RMS about 1 after the
training's input scaling; the paper's ε = 0.001 assumes inputs of unit norm). The reconstruction term is the
per-element MSE (about the FVU at unit RMS), so c = 1 makes a 30% miss of the target L0 cost about as much as 0.1 FVU.
"""

from __future__ import annotations

import torch

from saelib.dictionaries.sae.base import SAEConfig, Tensor
from saelib.dictionaries.sae.untied import UntiedSAE


def _kernel(z: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
    return ((z - threshold).abs() < bandwidth / 2).to(z.dtype) / bandwidth


class _JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(z, threshold)
        ctx.bandwidth = bandwidth
        return z * (z > threshold)

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, threshold = ctx.saved_tensors
        grad_z = grad * (z > threshold)
        grad_threshold = -(threshold * _kernel(z, threshold, ctx.bandwidth) * grad).sum(0)
        return grad_z, grad_threshold, None


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(z, threshold)
        ctx.bandwidth = bandwidth
        return (z > threshold).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        z, threshold = ctx.saved_tensors
        return torch.zeros_like(z), -(_kernel(z, threshold, ctx.bandwidth) * grad).sum(0), None


class JumpReLUSAE(UntiedSAE):
    architecture = "jumprelu"

    def __init__(self, cfg: SAEConfig, seed: int = 0):
        super().__init__(cfg, seed)
        self.threshold = torch.nn.Parameter(torch.full((cfg.n_models, cfg.n_features), cfg.threshold_init))

    def encode_members(self, x: Tensor) -> Tensor:
        x_bar = x[None] * self.cfg.input_scale - self.b_dec[:, None, :]
        pre = torch.matmul(x_bar, self.W_enc.transpose(1, 2)) + self.b_enc[:, None, :]
        return pre * (pre > self.threshold[:, None, :])

    def _encode_features(self, x: Tensor, features: Tensor) -> Tensor:
        pre = (x * self.cfg.input_scale - self.b_dec[0]) @ self.W_enc[0, features].T + self.b_enc[0, features]
        return pre * (pre > self.threshold[0, features])

    def loss_from_params(self, x: Tensor, params: dict[str, Tensor], alphas: Tensor) -> dict[str, Tensor]:
        x = x * self.cfg.input_scale
        parts = [
            self._member_loss(x, {name: p[j] for name, p in params.items()}, alphas[j]) for j in range(len(alphas))
        ]
        return {key: torch.stack([part[key] for part in parts]) for key in parts[0]}

    def _member_loss(self, x: Tensor, p: dict[str, Tensor], target: Tensor) -> dict[str, Tensor]:
        pre = torch.matmul(x - p["b_dec"], p["W_enc"].T) + p["b_enc"]
        threshold = p["threshold"].to(pre.dtype)
        codes = _JumpReLU.apply(pre, threshold, self.cfg.bandwidth)
        x_hat = torch.matmul(codes, p["W_dec"].T) + p["b_dec"]
        mse = (x_hat - x).pow(2).mean()
        l0 = _Step.apply(pre, threshold, self.cfg.bandwidth).sum(-1).mean()
        penalty = self.cfg.l0_coefficient * (l0 / target - 1).pow(2)
        return {
            "mse": mse,
            "l1": codes.detach().abs().sum(-1).mean(),
            "loss": mse + penalty,
            "codes": codes,
            "x_hat": x_hat,
        }

    @torch.no_grad()
    def after_step(self) -> None:
        super().after_step()
        self.threshold.clamp_(min=1e-6)  # θ > 0: f = JumpReLU(ReLU(z)), as SAELens computes it
