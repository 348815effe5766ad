"""Measuring the model itself: held-out loss per corpus source, next-token behaviour on prompts (IOI, pronouns),
and residual-stream statistics by layer. Every sampled number is returned with its standard error; tensors come
back on the CPU wherever the model runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from saelib.core.progress import progress as progress_bar
from saelib.core.stats import Estimate, mean_se
from saelib.model.hooks import resid_post
from saelib.model.loader import model_device
from saelib.text.corpus import Corpus, pack_contexts


@torch.inference_mode()
def context_losses(model, tokens: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of each context: [n_contexts] from tokens [n_contexts, pos]."""
    out = []
    for batch in tokens.split(batch_size):
        batch = batch.to(model_device(model))
        logits = model(batch)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), batch[:, 1:].flatten(), reduction="none")
        out.append(loss.view(len(batch), -1).mean(1).cpu())
    return torch.cat(out)


def heldout_loss_by_source(
    model,
    corpus: Corpus,
    n_contexts: int,
    context_length: int,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, Estimate]:
    """Cross-entropy on held-out documents of each source: mean over contexts, SE across contexts."""
    result = {}
    for source in progress_bar(corpus.sources, enabled=progress, desc="held-out loss"):
        ctx = pack_contexts(corpus, "heldout", context_length, n_contexts, seed=seed, mixture={source: 1.0})
        result[source] = mean_se(context_losses(model, torch.from_numpy(ctx.tokens), batch_size).numpy())
    return result


@torch.inference_mode()
def last_token_logits(model, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """Logits [n, vocab] predicting the token after each text. Texts of different lengths are right-padded; a
    causal model's last real position never sees the padding, so no attention mask is needed."""
    tok = model.tokenizer
    out = []
    for i in range(0, len(texts), batch_size):
        ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts[i : i + batch_size]]
        lengths = torch.tensor([len(x) for x in ids])
        batch = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
        for j, x in enumerate(ids):
            batch[j, : len(x)] = torch.tensor(x)
        logits = model(batch.to(model_device(model)))
        out.append(logits[torch.arange(len(ids)), lengths.to(logits.device) - 1].cpu())
    return torch.cat(out)


def logit_difference(logits: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
    """[n] logit(correct) - logit(wrong), e.g. IOI's IO minus S."""
    return logits.gather(1, correct[:, None])[:, 0] - logits.gather(1, wrong[:, None])[:, 0]


def two_way_probability(logits: torch.Tensor, correct: torch.Tensor, wrong: torch.Tensor) -> torch.Tensor:
    """[n] probability of the correct token when the softmax is restricted to {correct, wrong}."""
    return torch.sigmoid(logit_difference(logits, correct, wrong))


@torch.inference_mode()
def residual_norms(
    model, tokens: torch.Tensor, batch_size: int = 8, skip_first: int = 1, special_token: int | None = None
) -> dict[str, np.ndarray]:
    """Mean L2 norm of the residual stream before block 0 (layer -1) and after each block.

    Returns ``{"layer", "mean", "se", "special_mean"}``, each [L+1]. ``mean``/``se`` cover ordinary tokens: tokens in
    a context are correlated, so the SE is taken across contexts (one context's mean norm is one sample).
    ``special_mean`` is the mean norm at ``special_token`` (e.g. the document separator), kept apart because such
    tokens can carry norms tens of times larger. The first ``skip_first`` positions are dropped (an attention sink)."""
    n_layers = model.cfg.n_layers
    hooks = ["blocks.0.hook_resid_pre"] + [resid_post(i) for i in range(n_layers)]
    per_context, special = [], []  # [batch, L+1] per batch; [n_special, L+1] per batch
    for batch in tokens.split(batch_size):
        _, cache = model.run_with_cache(batch.to(model_device(model)), names_filter=hooks)
        norms = torch.stack([cache[h][:, skip_first:].norm(dim=-1).cpu() for h in hooks], dim=-1)  # [b, pos, L+1]
        is_special = (
            batch[:, skip_first:] == special_token
            if special_token is not None
            else torch.zeros(norms.shape[:2], dtype=torch.bool)
        )
        ordinary = (~is_special).unsqueeze(-1).float()
        per_context.append((norms * ordinary).sum(1) / ordinary.sum(1).clamp(min=1))
        special.append(norms[is_special])
    x = torch.cat(per_context).numpy()
    sp = torch.cat(special).numpy()
    estimates = [mean_se(x[:, i]) for i in range(x.shape[1])]
    return {
        "layer": np.arange(-1, n_layers),
        "mean": np.array([e.mean for e in estimates]),
        "se": np.array([e.se for e in estimates]),
        "special_mean": sp.mean(0) if len(sp) else np.full(n_layers + 1, np.nan),
    }


@dataclass(frozen=True)
class AblationCost:
    """What replacing one hook's activation costs in next-token cross-entropy (nats), with paired per-context
    differences: mean, standard error and t interval over contexts (the unit of independence)."""

    hook: str
    ce_clean: float
    zero: Estimate  # CE(zero-ablated) - CE(clean)
    mean: Estimate  # CE(mean-ablated) - CE(clean); the mean comes from other contexts


@torch.inference_mode()
def ablation_costs(
    model,
    hooks: Sequence[str],
    tokens: torch.Tensor,
    mean_tokens: torch.Tensor,
    batch_size: int = 8,
    exclude_positions: tuple[int, ...] = (0,),
) -> list[AblationCost]:
    """Zero- and mean-ablation ΔCE of each hook (e.g. every MLP layer's ``blocks.L.mlp.hook_post``): the hook's
    activation is replaced at every position but ``exclude_positions`` (the attention sink, where no SAE is
    trained) by 0 or by its mean over ``mean_tokens`` (contexts disjoint from ``tokens``), and the next-token CE of
    ``tokens`` is compared with the clean run's, context by context."""
    device = model_device(model)
    means = _mean_activations(model, list(hooks), mean_tokens, batch_size, exclude_positions)
    clean: list[torch.Tensor] = []
    zero: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    mean: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    for batch in tokens.split(batch_size):
        batch = batch.to(device)
        keep = torch.ones(batch.shape[1], dtype=torch.bool, device=device)
        keep[list(exclude_positions)] = False
        clean.append(_context_ce(model(batch), batch))
        for hook in hooks:
            for values, out in ((None, zero[hook]), (means[hook].to(device), mean[hook])):

                def replace(act, hook=None, values=values):
                    new = torch.zeros_like(act) if values is None else values.to(act.dtype).expand_as(act)
                    return torch.where(keep[None, :, None], new, act)

                out.append(_context_ce(model.run_with_hooks(batch, fwd_hooks=[(hook, replace)]), batch))
    base = torch.cat(clean)
    return [
        AblationCost(
            h,
            float(base.mean()),
            mean_se((torch.cat(zero[h]) - base).numpy()),
            mean_se((torch.cat(mean[h]) - base).numpy()),
        )
        for h in hooks
    ]


def _context_ce(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="none")
    return loss.view(len(tokens), -1).mean(1).cpu()


def _mean_activations(
    model, hooks: list[str], tokens: torch.Tensor, batch_size: int, exclude_positions: tuple[int, ...]
) -> dict[str, torch.Tensor]:
    """Mean activation of each hook over ``tokens`` (one cached forward pass per batch for every hook)."""
    totals: dict[str, torch.Tensor] = {}
    count = 0
    for batch in tokens.split(batch_size):
        _, cache = model.run_with_cache(batch.to(model_device(model)), names_filter=hooks)
        keep = torch.ones(batch.shape[1], dtype=torch.bool)
        keep[list(exclude_positions)] = False
        for hook in hooks:
            act = cache[hook][:, keep.to(cache[hook].device)]
            rows = act.reshape(-1, act.shape[-1]).double().sum(0).cpu()
            totals[hook] = rows if hook not in totals else totals[hook] + rows
        count += int(keep.sum()) * len(batch)
    return {hook: (total / count).float() for hook, total in totals.items()}
