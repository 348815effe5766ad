"""Untied sparse autoencoder of Bricken et al. (2023), "Towards Monosemanticity: Decomposing Language Models With
Dictionary Learning":

    x̄ = x − b_d                 (pre-encoder bias, shared with the decoder bias)
    f = ReLU(W_e x̄ + b_e)
    x̂ = W_d f + b_d              (decoder columns constrained to unit norm)
    L = mean_batch ‖x − x̂‖²₂ + λ · mean_batch ‖f‖₁

λ convention: here the squared error is **summed over dimensions** (as Anthropic wrote it), unlike the tied SAE's
per-element MSE; λ = α_tied · d_in gives the same trade-off. The unit-norm constraint is kept exactly: the gradient
component parallel to each decoder column is removed before the Adam step and the columns are renormalised after.
b_d starts at the mean of the data (``init_decoder_bias``; Anthropic used the geometric median). Dead features are
resampled on Anthropic's schedule by ``saelib.dictionaries.resampling``.
"""

from __future__ import annotations

import torch

from saelib.dictionaries.sae.base import SAE, SAEConfig, Tensor


class UntiedSAE(SAE):
    """Parameters W_enc [model, n_features, d_in], W_dec [model, d_in, n_features] (unit-norm columns), b_enc, b_dec;
    the TopK, BatchTopK and JumpReLU SAEs share them and change only the activation function and the loss."""

    architecture = "untied"

    def __init__(self, cfg: SAEConfig, seed: int = 0):
        if cfg.architecture != self.architecture:
            raise ValueError(
                f"{type(self).__name__} needs architecture {self.architecture!r}, got {cfg.architecture!r}"
            )
        super().__init__(cfg)
        gen = torch.Generator().manual_seed(seed)
        m, n, d = cfg.n_models, cfg.n_features, cfg.d_in
        dec = torch.randn(m, d, n, generator=gen)
        dec = dec / dec.norm(dim=1, keepdim=True)
        self.W_dec = torch.nn.Parameter(dec)  # [model, d_in, n_features], unit-norm columns
        self.W_enc = torch.nn.Parameter(dec.transpose(1, 2).clone())  # [model, n_features, d_in]
        self.b_enc = torch.nn.Parameter(torch.zeros(m, n))
        self.b_dec = torch.nn.Parameter(torch.zeros(m, d))

    def init_decoder_bias(self, sample: Tensor) -> None:
        with torch.no_grad():
            self.b_dec.copy_((sample * self.cfg.input_scale).mean(0).expand_as(self.b_dec))

    def dictionary(self) -> Tensor:
        return (self.W_dec / self.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-8)).transpose(1, 2)

    def encode_members(self, x: Tensor) -> Tensor:
        x_bar = x[None] * self.cfg.input_scale - self.b_dec[:, None, :]
        return torch.relu(torch.matmul(x_bar, self.W_enc.transpose(1, 2)) + self.b_enc[:, None, :])

    def _encode_features(self, x: Tensor, features: Tensor) -> Tensor:
        x_bar = x * self.cfg.input_scale - self.b_dec[0]
        return torch.relu(x_bar @ self.W_enc[0, features].T + self.b_enc[0, features])

    def decode_members(self, codes: Tensor) -> Tensor:
        return (torch.matmul(codes, self.W_dec.transpose(1, 2)) + self.b_dec[:, None, :]) / self.cfg.input_scale

    def loss_from_params(self, x: Tensor, params: dict[str, Tensor], alphas: Tensor) -> dict[str, Tensor]:
        x = x * self.cfg.input_scale
        b_dec = params["b_dec"][:, None, :]
        codes = torch.relu(torch.matmul(x[None] - b_dec, params["W_enc"].transpose(1, 2)) + params["b_enc"][:, None, :])
        x_hat = torch.matmul(codes, params["W_dec"].transpose(1, 2)) + b_dec
        sq = (x_hat - x).pow(2).sum(-1).mean(-1)
        l1 = codes.abs().sum(-1).mean(-1)
        mse = sq / self.cfg.d_in  # per-element, for logging on the same scale as the tied SAE
        return {"mse": mse, "l1": l1, "loss": sq + alphas * l1, "codes": codes, "x_hat": x_hat}

    @torch.no_grad()
    def before_step(self) -> None:
        if self.W_dec.grad is not None:  # remove the radial part: the step then keeps columns on the sphere
            unit = self.W_dec / self.W_dec.norm(dim=1, keepdim=True)
            self.W_dec.grad -= unit * (self.W_dec.grad * unit).sum(dim=1, keepdim=True)

    @torch.no_grad()
    def after_step(self) -> None:
        # torch's stubs type in-place /= as returning a Tensor, not the Parameter it modifies and returns
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-8)  # type: ignore[misc]
