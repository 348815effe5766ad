"""The field's SAE metrics, each with its formula. All take an ensemble and return one value per member.

- **L0** = mean over tokens of the number of features with a non-zero activation, E_t[#{i : c_i(t) > 0}].
- **FVU** (fraction of variance unexplained), *pooled* over the evaluation set:
  FVU = Σ_t ‖x_t − x̂_t‖² / Σ_t ‖x_t − x̄‖², with x̄ the mean activation of the set (1 − FVU = explained variance
  in SAELens' current definition; it differs from the per-token "legacy" variant).
- **Dead** features: never active on any of the N evaluation tokens (N is returned and printed beside it).
  **Dense** features: active on more than 10% of the evaluation tokens.
- **CE loss recovered** with zero ablation as the baseline, splicing the SAE's reconstruction into the model:
  (CE_zero − CE_SAE) / (CE_zero − CE_clean); 1 = as good as the real activation, 0 = as bad as deleting it.
  Against **mean ablation** (the activation replaced by its mean over training tokens), a stricter baseline:
  (CE_mean − CE_SAE) / (CE_mean − CE_clean).
  **KL** = E_t[KL(p_clean(·|t) ‖ p_SAE(·|t))] over predicted tokens.
- **MMCS** (mean max cosine similarity, Sharkey et al.) between dictionaries A and B:
  MMCS(A, B) = mean_{a ∈ A} max_{b ∈ B} cos(a, b).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from saelib.activations.store import ActivationStore
from saelib.dictionaries.sae import SAE
from saelib.model.forward import run_blocks
from saelib.model.hooks import is_resid_post, layer_of

DENSE_THRESHOLD = 0.10


@dataclass
class ReconstructionSums:
    """What ``reconstruction_metrics`` accumulates over a set of rows. Sums over disjoint row sets add (``+``), so
    metrics over a union need no second pass over the rows both sets share."""

    sq_err: torch.Tensor  # [model] float64: Σ_t ‖x_t − x̂_t‖² (zeros when only encoding)
    fired: torch.Tensor  # [model, n_features] int64: tokens on which each feature was active
    sum_x: torch.Tensor  # [d_in] float64
    sum_x2: torch.Tensor  # [] float64
    n: int
    reconstructed: bool

    def __add__(self, other: "ReconstructionSums") -> "ReconstructionSums":
        return ReconstructionSums(
            self.sq_err + other.sq_err,
            self.fired + other.fired,
            self.sum_x + other.sum_x,
            self.sum_x2 + other.sum_x2,
            self.n + other.n,
            self.reconstructed and other.reconstructed,
        )

    def metrics(self) -> list[dict[str, float]]:
        if self.n == 0:
            raise ValueError("no rows were evaluated: the row mask (or max_rows) leaves none")
        total_var = self.sum_x2 - self.sum_x.pow(2).sum() / self.n  # Σ‖x − x̄‖²
        freq = self.fired.double() / self.n
        return [
            {
                "l0": float(self.fired[i].sum()) / self.n,
                **({"fvu": float(self.sq_err[i] / total_var)} if self.reconstructed else {}),
                "dead_fraction": float((freq[i] == 0).double().mean()),
                "dense_fraction": float((freq[i] > DENSE_THRESHOLD).double().mean()),
                "eval_tokens": self.n,
            }
            for i in range(len(self.fired))
        ]


@torch.no_grad()
def reconstruction_sums(
    sae: SAE,
    store: ActivationStore,
    hook: str,
    row_mask: np.ndarray | None = None,
    max_rows: int | None = None,
    batch_size: int = 4096,
    reconstruct: bool = True,
) -> ReconstructionSums:
    """The sums behind ``reconstruction_metrics``, over the (masked) rows of ``store``, computed on the SAE's
    device (the sums stay there)."""
    sae.check_compatible(store.config["model"], hook, store.width(hook))
    m, n_feat, d, dev = sae.cfg.n_models, sae.cfg.n_features, store.width(hook), sae.device
    sums = ReconstructionSums(
        torch.zeros(m, dtype=torch.float64, device=dev),
        torch.zeros(m, n_feat, dtype=torch.int64, device=dev),
        torch.zeros(d, dtype=torch.float64, device=dev),
        torch.tensor(0.0, dtype=torch.float64, device=dev),
        0,
        reconstruct,
    )
    for x in store.batches(hook, batch_size, seed=0, max_rows=max_rows, row_mask=row_mask):
        x = x.to(dev)
        codes = sae.encode_members(x)
        sums.fired += (codes > 0).sum(1)  # integer counts: no float copy of the [member, batch, feature] mask
        if reconstruct:
            sums.sq_err += (sae.decode_members(codes) - x).double().pow(2).sum(dim=(1, 2))
            sums.sum_x += x.double().sum(0)
            sums.sum_x2 += x.double().pow(2).sum()
        sums.n += len(x)
    return sums


def reconstruction_metrics(
    sae: SAE,
    store: ActivationStore,
    hook: str,
    row_mask: np.ndarray | None = None,
    max_rows: int | None = None,
    batch_size: int = 4096,
    reconstruct: bool = True,
) -> list[dict[str, float]]:
    """L0, pooled FVU, dead and dense fractions of every member over the (masked) rows of ``store``.

    ``reconstruct=False`` only encodes (no FVU in the result): for the release's dead count, 1.7x faster on a
    release-sized ensemble (bench/bench_firing_counts.py, 65,536 rows)."""
    return reconstruction_sums(sae, store, hook, row_mask, max_rows, batch_size, reconstruct).metrics()


def feature_frequencies(sae: SAE, x: torch.Tensor) -> torch.Tensor:
    """[model, n_features] fraction of the rows of ``x`` on which each feature fires."""
    with torch.no_grad():
        return (sae.encode_members(x) > 0).float().mean(1)


def max_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[n_a]: for each row of ``a`` [n_a, d], its largest cosine similarity with any row of ``b`` [n_b, d]."""
    return (F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T).max(dim=1).values


def mmcs(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over rows of ``a`` [n_a, d] of the max cosine similarity with any row of ``b`` [n_b, d]."""
    return float(max_cosines(a, b).mean())


def kept_positions(tokens: torch.Tensor, separator_id: int, exclude_positions: tuple[int, ...] = (0,)) -> torch.Tensor:
    """[n, pos] bool: positions that are neither excluded (default: position 0) nor the document separator; their
    norms are tens of times an ordinary token's (notebook 00), so splices and edits leave them alone."""
    keep = torch.ones_like(tokens, dtype=torch.bool)
    keep[:, list(exclude_positions)] = False
    return keep & (tokens != separator_id)


@torch.no_grad()
def ce_loss_recovered(
    model,
    sae: SAE,
    hook: str,
    tokens: torch.Tensor,
    separator_id: int = -1,
    exclude_positions: tuple[int, ...] = (0,),
    batch_size: int = 4,
    mean_activation: torch.Tensor | None = None,
    max_norm: float | None = None,
) -> list[dict[str, float]]:
    """Splice each member's reconstruction into ``hook`` (at the positions the SAE was trained on; excluded
    positions keep their real activation) and measure next-token CE and KL against the clean run.

    Returns per member: ce_clean, ce_sae, ce_zero, ce_recovered = (ce_zero - ce_sae) / (ce_zero - ce_clean), kl
    (mean KL(clean || patched) per next-token prediction), kl_zero (the same under zero ablation), kl_recovered =
    1 - kl / kl_zero, and the standard error of ce_sae across contexts (ce_sae_se); with ``mean_activation`` [d_in]
    also ce_mean, ce_recovered_mean, kl_mean and kl_recovered_mean against mean ablation. Rows with norm above
    ``max_norm`` (outliers the SAE was not trained on) keep their real activation too."""
    return ce_loss_recovered_many(
        model,
        [sae],
        tokens,
        separator_id,
        exclude_positions,
        batch_size,
        {hook: mean_activation} if mean_activation is not None else None,
        max_norm,
        hooks=[hook],
    )[0]


@torch.no_grad()
def ce_loss_recovered_many(
    model,
    saes: list[SAE],
    tokens: torch.Tensor,
    separator_id: int = -1,
    exclude_positions: tuple[int, ...] = (0,),
    batch_size: int = 4,
    mean_activations: dict[str, torch.Tensor] | None = None,
    max_norm: float | None = None,
    hooks: list[str] | None = None,
) -> list[list[dict]]:
    """``ce_loss_recovered`` for several SAEs at once (each at ``hooks[i]``, default its own ``cfg.hook``): one
    clean forward pass per batch caches every residual hook, and the zero (and mean) ablation runs once per hook,
    instead of once per SAE; the numbers are the same as calling ``ce_loss_recovered`` on each."""
    from saelib.model.loader import model_device, model_name

    hooks = [sae.cfg.hook for sae in saes] if hooks is None else hooks
    dev = model_device(model)  # tokens, masks and means go to the model; an SAE elsewhere gets its rows moved
    for sae, hook in zip(saes, hooks, strict=True):
        sae.check_compatible(model_name(model), hook, sae.cfg.d_in)
    means = {hook: m.to(dev) for hook, m in (mean_activations or {}).items()}
    per_ctx: dict = {}
    kls: dict = {}
    for batch in tokens.to(dev).split(batch_size):
        keep = kept_positions(batch, separator_id, exclude_positions)
        clean_logits, runners = patch_runners(model, batch, sorted(set(hooks)), keep, max_norm)
        clean_logp = clean_logits.log_softmax(-1)
        per_ctx.setdefault("clean", []).append(next_token_ce(clean_logits, batch))

        def record(key, logits):
            per_ctx.setdefault(key, []).append(next_token_ce(logits, batch))
            kls.setdefault(key, []).append(_kl(clean_logp, logits))

        for hook, run_patched in runners.items():
            record(("zero", hook), run_patched(lambda act: torch.zeros_like(act)))
            if hook in means:
                record(("mean", hook), run_patched(lambda act, m=means[hook]: m.expand_as(act)))
        for j, (sae, hook) in enumerate(zip(saes, hooks)):
            for i in range(sae.cfg.n_models):

                def replace(act, i=i, sae=sae):
                    rows = act.reshape(-1, act.shape[-1]).to(sae.device)
                    return sae.decode_members(sae.encode_members(rows))[i].reshape(act.shape).to(act.device)

                record((j, i), runners[hook](replace))
    ce = {k: torch.cat(v) for k, v in per_ctx.items()}
    clean = ce["clean"].mean().item()
    out = []
    for j, (sae, hook) in enumerate(zip(saes, hooks)):
        zero, rows = ce[("zero", hook)].mean().item(), []
        kl_zero = torch.cat(kls[("zero", hook)]).mean().item()
        for i in range(sae.cfg.n_models):
            ce_sae, kl = ce[(j, i)].mean().item(), torch.cat(kls[(j, i)]).mean().item()
            row = {
                "ce_clean": clean,
                "ce_sae": ce_sae,
                "ce_zero": zero,
                "ce_recovered": (zero - ce_sae) / (zero - clean),
                "kl": kl,
                "ce_sae_se": (ce[(j, i)].std() / len(ce[(j, i)]) ** 0.5).item(),
                "kl_zero": kl_zero,
                "kl_recovered": 1 - kl / kl_zero,
            }
            if hook in means:
                mean = ce[("mean", hook)].mean().item()
                kl_mean = torch.cat(kls[("mean", hook)]).mean().item()
                row.update(
                    ce_mean=mean,
                    ce_recovered_mean=(mean - ce_sae) / (mean - clean),
                    kl_mean=kl_mean,
                    kl_recovered_mean=1 - kl / kl_mean,
                )
            rows.append(row)
        out.append(rows)
    return out


def _kl(clean_logp: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per-context mean KL(clean || patched) over next-token predictions, [batch] (the last position predicts
    nothing scored, as in ``next_token_ce``)."""
    logp = logits.log_softmax(-1)
    return (clean_logp.exp() * (clean_logp - logp)).sum(-1)[:, :-1].mean(1)


def next_token_ce(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per-context mean next-token cross-entropy, [batch]: position t's logits [batch, ctx, vocab] scored against
    token t + 1 of ``tokens`` [batch, ctx]; the last position predicts nothing scored."""
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
    return loss.view(len(tokens), -1).mean(1)


def patch_runner(model, tokens: torch.Tensor, hook: str, keep: torch.Tensor, max_norm: float | None):
    """(clean logits, run_patched(fn) -> logits with ``fn``'s output spliced in at ``hook`` where kept): the one-hook
    case of ``patch_runners``. ``keep`` [batch, ctx] marks the positions patched (``kept_positions``); rows with norm
    above ``max_norm`` keep their real activation."""
    clean_logits, runners = patch_runners(model, tokens, [hook], keep, max_norm)
    return clean_logits, runners[hook]


def patch_runners(model, tokens: torch.Tensor, hooks: list[str], keep: torch.Tensor, max_norm: float | None):
    """(clean logits, {hook: run_patched(fn) -> logits with ``fn``'s output spliced in at that hook where kept}).

    At residual hooks, one clean run caches every activation and each patched run starts from it, running only the
    blocks after the hook's layer (the same logits as a full hooked forward up to float order; tested): most of the
    cost of CE recovered at deep layers. Other hooks (e.g. an MLP's inside its block) rerun the whole model."""

    def splice(act, fn):
        where = keep if max_norm is None else keep & (act.norm(dim=-1) <= max_norm)
        return torch.where(where[..., None], fn(act), act)

    resid = [h for h in hooks if is_resid_post(h)]
    if resid:
        clean_logits, cache = model.run_with_cache(tokens, names_filter=resid)
    else:
        clean_logits, cache = model(tokens), {}
    runners: dict[str, Callable[[Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]] = {}
    for hook in hooks:
        if hook in resid:

            def from_cache(fn, act=cache[hook], layer=layer_of(hook)):
                return model.unembed(model.ln_final(run_blocks(model, splice(act, fn), layer)))

            runners[hook] = from_cache
        else:

            def rerun(fn, hook=hook):
                return model.run_with_hooks(tokens, fwd_hooks=[(hook, lambda act, hook=None: splice(act, fn))])

            runners[hook] = rerun
    return clean_logits, runners


def evaluate_ensemble(
    model,
    sae: SAE,
    eval_store: ActivationStore,
    ce_tokens: torch.Tensor,
    row_mask: np.ndarray,
    separator_id: int,
    max_rows: int | None = None,
) -> list[dict[str, Any]]:
    """All metrics for every member: L0, FVU, dead, dense on ``eval_store``; CE recovered and KL on ``ce_tokens``."""
    hook = sae.cfg.hook
    recon = reconstruction_metrics(sae, eval_store, hook, row_mask=row_mask, max_rows=max_rows)
    ce = ce_loss_recovered(model, sae, hook, ce_tokens, separator_id=separator_id)
    return [{"hook": hook, "ratio": sae.cfg.ratio, "alpha": a, **r, **c} for a, r, c in zip(sae.cfg.alphas, recon, ce)]


def evaluate_ensembles(
    model,
    saes: list[SAE],
    eval_store: ActivationStore,
    ce_tokens: torch.Tensor,
    row_mask: np.ndarray,
    separator_id: int,
    max_rows: int | None = None,
) -> list[list[dict]]:
    """``evaluate_ensemble`` for several ensembles (any hooks): the same numbers, with one clean forward pass for all
    of them and one zero ablation per hook (notebook 01's sweep: 8 ensembles at 5 layers)."""
    ces = ce_loss_recovered_many(model, saes, ce_tokens, separator_id=separator_id)
    out = []
    for sae, ce in zip(saes, ces):
        recon = reconstruction_metrics(sae, eval_store, sae.cfg.hook, row_mask=row_mask, max_rows=max_rows)
        out.append(
            [
                {"hook": sae.cfg.hook, "ratio": sae.cfg.ratio, "alpha": a, **r, **c}
                for a, r, c in zip(sae.cfg.alphas, recon, ce)
            ]
        )
    return out


@torch.no_grad()
def fvu_interval(
    sae: SAE,
    store: ActivationStore,
    hook: str,
    row_mask: np.ndarray,
    n_boot: int = 2000,
    level: float = 0.99,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Pooled FVU of a one-member SAE on the masked rows of ``store`` with a percentile bootstrap interval over
    contexts (rows of one context are correlated, so contexts are the resampled unit): (fvu, low, high)."""
    rows = np.flatnonzero(row_mask)
    x = torch.from_numpy(np.asarray(store.activations(hook)[rows], dtype=np.float32))
    err = (sae.decode(sae.encode(x.to(sae.device))).cpu() - x).double().pow(2).sum(-1).numpy()
    tot = (x.double() - x.double().mean(0)).pow(2).sum(-1).numpy()
    ctx = rows // store.context_length
    _, inverse = np.unique(ctx, return_inverse=True)
    err_c, tot_c = np.bincount(inverse, err), np.bincount(inverse, tot)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(err_c), size=(n_boot, len(err_c)))
    boot = err_c[draws].sum(1) / tot_c[draws].sum(1)
    tail = (1 - level) / 2
    return float(err.sum() / tot.sum()), float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))
