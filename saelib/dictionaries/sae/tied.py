"""Tied sparse autoencoder of Cunningham et al. (2023), "Sparse Autoencoders Find Highly Interpretable Features in
Language Models", as in the paper's code (HoagyC/sparse_coding, ``FunctionalTiedSAE``):

    M̂ = M / ‖M‖_row            (rows renormalised to unit norm inside every forward pass: a re-parametrisation)
    c  = ReLU(M̂ x + b)          (encoder bias b only; no decoder or pre-encoder bias)
    x̂  = M̂ᵀ c                   (the same matrix decodes)
    L  = mean_{batch, d}(x̂ − x)² + α · mean_batch ‖c‖₁

α convention: the reconstruction term is the **per-element** MSE (averaged over the batch *and* the d_in
dimensions) while the L1 term is summed over features and averaged over the batch. A library whose MSE sums over
dimensions (‖x − x̂‖², averaged over the batch) reaches the same optimum with α_summed = α · d_in; e.g. the paper's
α = 8.6e-4 on Pythia-70M (d = 512) is 0.44 there, and on SmolLM2 (d = 576) 0.50.
"""

from __future__ import annotations

import torch

from saelib.dictionaries.sae.base import SAE, SAEConfig, Tensor


class TiedSAE(SAE):
    def __init__(self, cfg: SAEConfig, seed: int = 0):
        if cfg.architecture != "tied":
            raise ValueError(f"TiedSAE needs architecture 'tied', got {cfg.architecture!r}")
        super().__init__(cfg)
        gen = torch.Generator().manual_seed(seed)
        weight = torch.empty(cfg.n_models, cfg.n_features, cfg.d_in)
        bound = (6.0 / (cfg.n_features + cfg.d_in)) ** 0.5  # xavier_uniform_, as the paper's code
        weight.uniform_(-bound, bound, generator=gen)
        self.weight = torch.nn.Parameter(weight)  # [model, n_features, d_in]
        self.encoder_bias = torch.nn.Parameter(torch.zeros(cfg.n_models, cfg.n_features))

    def dictionary(self) -> Tensor:
        return self.weight / self.weight.norm(dim=-1, keepdim=True).clamp(min=1e-8)

    def encode_members(self, x: Tensor) -> Tensor:
        x = x * self.cfg.input_scale
        return torch.relu(torch.matmul(x, self.dictionary().transpose(1, 2)) + self.encoder_bias[:, None, :])

    def _encode_features(self, x: Tensor, features: Tensor) -> Tensor:
        rows = self.weight[0, features]
        rows = rows / rows.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        return torch.relu((x * self.cfg.input_scale) @ rows.T + self.encoder_bias[0, features])

    def decode_members(self, codes: Tensor) -> Tensor:
        return torch.matmul(codes, self.dictionary()) / self.cfg.input_scale

    def loss_from_params(self, x: Tensor, params: dict[str, Tensor], alphas: Tensor) -> dict[str, Tensor]:
        x = x * self.cfg.input_scale  # the loss is measured on scaled activations (see saelib.dictionaries.train)
        weight = params["weight"]
        d = weight / weight.norm(dim=-1, keepdim=True).clamp(min=1e-8)  # normalised once, shared by enc and dec
        codes = torch.relu(torch.matmul(x, d.transpose(1, 2)) + params["encoder_bias"][:, None, :])
        x_hat = torch.matmul(codes, d)
        mse = (x_hat - x).pow(2).mean(dim=(1, 2))
        l1 = codes.abs().sum(-1).mean(-1)
        return {"mse": mse, "l1": l1, "loss": mse + alphas * l1, "codes": codes, "x_hat": x_hat}
