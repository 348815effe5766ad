"""BatchTopK sparse autoencoder of Bussmann, Leask and Nanda (2024), "BatchTopK Sparse Autoencoders" (arXiv
2412.06410), following SAELens (``sae_lens/saes/batchtopk_sae.py``) and dictionary_learning
(``dictionary_learning/trainers/batch_top_k.py``):

    training:  f = the k·B largest ReLU(z) over the whole batch of B rows (k active latents per row on average)
    inference: f = z · 1[z > θ],  θ = exponential moving average (rate 0.01, as SAELens) of the smallest value
               kept in each training batch

so a trained BatchTopK SAE is a JumpReLU SAE with one threshold for every latent, and ships as SAELens's
``jumprelu`` with ``metadata.training_architecture = "batchtopk"``. Encoder, decoder, unit-norm decoder columns and
the AuxK loss are the TopK SAE's (``saelib.dictionaries.sae.topk``); each member's k is its entry of ``cfg.alphas``.
"""

from __future__ import annotations

import torch

from saelib.dictionaries.sae.base import SAEConfig, Tensor
from saelib.dictionaries.sae.topk import SparseCodes, TopKSAE

THRESHOLD_RATE = 0.01  # SAELens's topk_threshold_lr


class BatchTopKSAE(TopKSAE):
    architecture = "batchtopk"
    threshold: Tensor  # buffer [model]

    def __init__(self, cfg: SAEConfig, seed: int = 0):
        super().__init__(cfg, seed)
        self.register_buffer("threshold", torch.full((cfg.n_models,), -1.0))  # < 0: not yet estimated

    def loss_state(self, members: slice) -> dict[str, Tensor]:
        return {**super().loss_state(members), "threshold": self.threshold[members]}

    def select(self, pre: Tensor, k: int, state: dict[str, Tensor]) -> SparseCodes:
        n_rows, n = pre.shape
        values, pos = torch.relu(pre).reshape(-1).topk(min(k * n_rows, pre.numel()), sorted=False)
        order = pos.argsort()
        pos, values = pos[order], values[order]
        rows = torch.div(pos, n, rounding_mode="floor")
        counts = torch.bincount(rows, minlength=n_rows)
        if torch.is_grad_enabled():
            self._update_threshold(state["threshold"], values.detach())
        return SparseCodes(pos - rows * n, values, torch.cumsum(counts, 0) - counts, n_rows)

    @staticmethod
    @torch.no_grad()
    def _update_threshold(threshold: Tensor, kept: Tensor) -> None:
        positive = kept[kept > 0]
        if len(positive) == 0:
            return
        smallest = positive.min().float()
        if float(threshold) < 0:
            threshold.fill_(smallest)
        else:
            threshold.add_(THRESHOLD_RATE * (smallest - threshold))

    def select_inference(self, pre: Tensor, member: int) -> Tensor:
        theta = self.threshold[member].clamp(min=0)
        return pre * (pre > theta)

    def _encode_features(self, x: Tensor, features: Tensor) -> Tensor:
        pre = (x * self.cfg.input_scale - self.b_dec[0]) @ self.W_enc[0, features].T + self.b_enc[0, features]
        return pre * (pre > self.threshold[0].clamp(min=0))
