"""TopK sparse autoencoder of Gao et al. (2024), "Scaling and evaluating sparse autoencoders" (arXiv 2406.04093,
section 2.3; the AuxK loss in appendix A.2), following SAELens (``sae_lens/saes/topk_sae.py``: the auxiliary loss
scaled by min(n_dead / k_aux, 1)) and dictionary_learning (``dictionary_learning/trainers/top_k.py``):

    z = W_enc (x − b_dec) + b_enc
    f = TopK_k(ReLU(z))                 (the k largest pre-activations of each row are kept, the others set to 0)
    x̂ = W_dec f + b_dec                 (decoder columns kept at unit norm, as in the untied SAE)
    L = ‖x − x̂‖² + α_aux · min(n_dead / k_aux, 1) · ‖e − ê‖²,   e = x − x̂ (no gradient),
        ê = W_dec TopK_{k_aux}(z restricted to the dead latents)

A latent is dead once it has not fired for ``cfg.dead_after_tokens`` training rows. Each member's k is its entry of
``cfg.alphas``. Parameters and the unit-norm decoder constraint are the untied SAE's.

Sparse training step: the encoder's matmul runs once, without a graph; the selected pre-activations re-enter
autograd through ``_PreActivationsAt``, whose backward pass touches only the selected entries; x̂ and ê are sums of
k decoder columns per row, computed with ``embedding_bag``. Every part but the forward matmul costs B·k·d
multiply-adds instead of B·n·d (``bench/bench_topk_step.py`` measures the step against SAELens's TopK SAE).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from saelib.dictionaries.sae.base import SAEConfig, Tensor
from saelib.dictionaries.sae.untied import UntiedSAE


@dataclass(frozen=True)
class SparseCodes:
    """The non-zero codes of a batch of ``n_rows`` rows: ``latents`` and ``values`` [nnz] grouped by row, row r's
    entries starting at ``offsets[r]`` (``embedding_bag``'s layout)."""

    latents: Tensor
    values: Tensor
    offsets: Tensor
    n_rows: int

    def rows(self) -> Tensor:
        counts = torch.diff(self.offsets, append=self.offsets.new_tensor([len(self.latents)]))
        return torch.repeat_interleave(torch.arange(self.n_rows, device=self.offsets.device), counts)

    def dense(self, n_features: int) -> Tensor:
        out = self.values.new_zeros(self.n_rows, n_features)
        return out.index_put_((self.rows(), self.latents), self.values)


def sparse_decode(codes: SparseCodes, w_dec: Tensor) -> Tensor:
    """Σ_j f_j W_dec[:, j] per row from the sparse codes; ``w_dec`` [d_in, n_features] -> [n_rows, d_in]."""
    # rows of a contiguous [n_features, d_in] copy: gathering columns of [d_in, n_features] in place is strided
    return F.embedding_bag(
        codes.latents, w_dec.T.contiguous(), codes.offsets, mode="sum", per_sample_weights=codes.values.to(w_dec.dtype)
    )


class _PreActivationsAt(torch.autograd.Function):
    """z[rows, latents] of z = x̄ W_encᵀ + b_enc, given those values computed without a graph; the backward pass
    computes the gradients of x̄, W_enc and b_enc from these entries alone (sparse matmuls)."""

    @staticmethod
    def forward(
        ctx, x_bar: Tensor, w_enc: Tensor, b_enc: Tensor, values: Tensor, rows: Tensor, latents: Tensor
    ) -> Tensor:
        ctx.save_for_backward(x_bar, w_enc, rows, latents)
        return values.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        x_bar, w_enc, rows, latents = ctx.saved_tensors
        grad = grad.to(x_bar.dtype)
        picked = torch.sparse_coo_tensor(
            torch.stack([rows, latents]), grad, (len(x_bar), len(w_enc)), check_invariants=False
        )
        grad_x = torch.sparse.mm(picked, w_enc) if ctx.needs_input_grad[0] else None
        grad_w = torch.sparse.mm(picked.t(), x_bar)
        grad_b = torch.zeros(len(w_enc), dtype=grad.dtype, device=grad.device).index_add_(0, latents, grad)
        return grad_x, grad_w, grad_b, None, None, None


def with_gradients(codes: SparseCodes, x_bar: Tensor, w_enc: Tensor, b_enc: Tensor) -> SparseCodes:
    """``codes`` selected from pre-activations computed without a graph, their values made differentiable with
    respect to x̄, W_enc and b_enc (ReLU applied)."""
    values = _PreActivationsAt.apply(x_bar, w_enc, b_enc, codes.values, codes.rows(), codes.latents)
    return SparseCodes(codes.latents, torch.relu(values), codes.offsets, codes.n_rows)


def topk_codes(pre: Tensor, k: int) -> SparseCodes:
    """The k largest ReLU'd pre-activations of each row of ``pre`` [B, n]."""
    values, latents = pre.topk(k, dim=-1, sorted=False)
    n = pre.shape[0]
    return SparseCodes(
        latents.reshape(-1), torch.relu(values).reshape(-1), torch.arange(0, n * k, k, device=pre.device), n
    )


class TopKSAE(UntiedSAE):
    architecture = "topk"
    rows_since_fired: Tensor  # buffer [model, n_features]

    def __init__(self, cfg: SAEConfig, seed: int = 0):
        super().__init__(cfg, seed)
        # training rows since each latent last fired (the AuxK loss's dead-latent test)
        self.register_buffer("rows_since_fired", torch.zeros(cfg.n_models, cfg.n_features, dtype=torch.long))

    def pre_activations(self, x: Tensor) -> Tensor:
        """z [model, batch, n_features] for raw activations x [batch, d_in]."""
        x_bar = x[None] * self.cfg.input_scale - self.b_dec[:, None, :]
        return torch.matmul(x_bar, self.W_enc.transpose(1, 2)) + self.b_enc[:, None, :]

    def select(self, pre: Tensor, k: int, state: dict[str, Tensor]) -> SparseCodes:
        """Training-time selection of one member's active latents from its pre-activations [B, n]; ``state`` holds
        that member's views of ``loss_state``."""
        return topk_codes(pre, k)

    def encode_members(self, x: Tensor) -> Tensor:
        pre = self.pre_activations(x)
        return torch.stack([self.select_inference(pre[i], i) for i in range(self.cfg.n_models)])

    def select_inference(self, pre: Tensor, member: int) -> Tensor:
        """Dense codes [B, n] of member ``member`` at inference (TopK: the same rule as in training)."""
        return topk_codes(pre, int(self.cfg.alphas[member])).dense(self.cfg.n_features)

    def _encode_features(self, x: Tensor, features: Tensor) -> Tensor:  # TopK needs every pre-activation
        return self.encode(x, grad=True)[:, features]

    def loss_state(self, members: slice) -> dict[str, Tensor]:
        return {"rows_since_fired": self.rows_since_fired[members]}

    def loss_from_params(self, x: Tensor, params: dict[str, Tensor], alphas: Tensor) -> dict[str, Tensor]:
        x = x * self.cfg.input_scale
        parts = [
            self._member_loss(x, {name: p[j] for name, p in params.items()}, float(alphas[j]))
            for j in range(len(alphas))
        ]
        return {key: torch.stack([part[key] for part in parts]) for key in parts[0]}

    def _member_loss(self, x: Tensor, p: dict[str, Tensor], sparsity: float) -> dict[str, Tensor]:
        x_bar = x - p["b_dec"]
        with torch.no_grad():
            pre = torch.matmul(x_bar, p["W_enc"].T) + p["b_enc"]
        codes = with_gradients(self.select(pre, int(sparsity), p), x_bar, p["W_enc"], p["b_enc"])
        x_hat = sparse_decode(codes, p["W_dec"]) + p["b_dec"]
        sq = (x_hat - x).pow(2).sum(-1).mean()
        dense = codes.dense(self.cfg.n_features).float()
        aux = self._aux_loss(pre, x_bar, (x - x_hat).detach(), p)
        if torch.is_grad_enabled():  # training: count rows since each latent fired
            with torch.no_grad():
                fired = (dense > 0).any(0)
                p["rows_since_fired"].add_(len(x)).masked_fill_(fired, 0)
        return {
            "mse": sq / self.cfg.d_in,
            "l1": dense.abs().sum(-1).mean(),
            "loss": sq + aux,
            "codes": dense,
            "x_hat": x_hat,
            "aux": aux,
        }

    def _aux_loss(self, pre: Tensor, x_bar: Tensor, residual: Tensor, p: dict[str, Tensor]) -> Tensor:
        dead = p["rows_since_fired"] >= self.cfg.dead_after_tokens
        n_dead = int(dead.sum())
        if n_dead == 0 or self.cfg.aux_coefficient == 0:
            return pre.new_zeros(()).float()
        k_aux = min(self.cfg.aux_k or self.cfg.d_in // 2, n_dead)
        codes = topk_codes(pre.masked_fill(~dead, float("-inf")), k_aux)
        codes = with_gradients(codes, x_bar, p["W_enc"], p["b_enc"])
        err_hat = sparse_decode(codes, p["W_dec"])
        scale = min(n_dead / k_aux, 1.0)
        return self.cfg.aux_coefficient * scale * (err_hat - residual).pow(2).sum(-1).mean()
