"""Running part of the model: the residual stream after one block, carried through the blocks that follow it.

Rotary position embeddings and the causal mask are rebuilt as the model's own forward does (tested against a full
forward pass), so an edited residual at layer ``a`` gives the residual at a later layer ``b`` or the logits without
recomputing the blocks up to ``a``. Differentiable with respect to the input residual.

``run_blocks`` and ``logits_from`` compute where the model is and return on the input's device: a residual kept on
the CPU (as the analysis code keeps them, beside SAEs on the CPU) goes to a GPU model and its result comes back.
``collect_activations`` runs the model from the tokens and returns the activations at named hooks on the CPU;
``collect_residuals`` is the same keyed by layer, at each ``blocks.N.hook_resid_post``: the one residual collector
behind ``patching.residuals``, ``case_studies.residuals_at`` and ``erasure.clean_residuals``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from saelib.model.hooks import resid_post, stop_layer
from saelib.model.loader import model_device

Tensor = torch.Tensor


def run_blocks(model, resid: Tensor, after_layer: int, through_layer: int | None = None) -> Tensor:
    """The output of block ``through_layer`` (default: the last) [n, pos, d], given ``resid`` [n, pos, d], the output
    of block ``after_layer`` (``blocks.{after_layer}.hook_resid_post``), on ``resid``'s device."""
    last = len(model.blocks) - 1 if through_layer is None else through_layer
    if not -1 <= after_layer <= last < len(model.blocks):
        raise ValueError(f"need -1 <= after_layer ({after_layer}) <= through_layer ({last}) < {len(model.blocks)}")
    h = resid.to(model_device(model))  # differentiable: gradients flow back to resid's device
    n, length, _ = h.shape
    pos = torch.arange(length, device=h.device)[None].expand(n, length)
    cos_sin = model.rotary_emb(h, pos) if hasattr(model, "rotary_emb") else None
    causal = torch.full((length, length), torch.finfo(h.dtype).min, device=h.device).triu(1)[None, None]
    for block in model.blocks[after_layer + 1 : last + 1]:
        h = block(h, attention_mask=causal, position_ids=pos, position_embeddings=cos_sin)
        h = h[0] if isinstance(h, tuple) else h
    return h.to(resid.device)


def logits_from(model, resid: Tensor, after_layer: int, positions: Tensor | None = None) -> Tensor:
    """Logits [n, pos, vocab] of the rest of the model run on ``resid`` [n, pos, d] (the output of block
    ``after_layer``), or [n, vocab] at one position per row (``positions`` [n]: only those are unembedded), on
    ``resid``'s device."""
    h = run_blocks(model, resid.to(model_device(model)), after_layer)
    if positions is not None:
        h = h[torch.arange(len(h), device=h.device), positions.to(h.device)][:, None]
    logits = model.unembed(model.ln_final(h))
    return (logits if positions is None else logits[:, 0]).to(resid.device)


def collect_activations(
    model,
    tokens: Tensor,
    hooks: Sequence[str],
    batch_size: int | None = None,
    lengths: Tensor | None = None,
    dtype: torch.dtype | None = torch.float32,
) -> tuple[dict[str, Tensor], Tensor | None]:
    """({hook: activations [n, pos, d]}, logits) of ``tokens`` [n, pos], on the CPU wherever the model runs (where
    the SAEs and decompositions that read them are), without gradients.

    ``batch_size`` rows per forward pass (None: all at once); ``dtype`` the activations' dtype (None: the model's).
    Without ``lengths`` each pass stops after the deepest hook and the logits are None; with ``lengths`` [n] the
    whole model runs and the logits are those [n, vocab] at each row's last real position (``lengths - 1``)."""
    hooks = list(hooks)
    dev = model_device(model)
    acts: dict[str, list[Tensor]] = {h: [] for h in hooks}
    logits: list[Tensor] = []
    batches = [tokens] if batch_size is None else tokens.split(batch_size)
    lens = (
        [None] * len(batches) if lengths is None else ([lengths] if batch_size is None else lengths.split(batch_size))
    )
    with torch.no_grad():
        for batch, batch_lengths in zip(batches, lens):
            out, cache = model.run_with_cache(
                batch.to(dev), names_filter=hooks, stop_at_layer=stop_layer(hooks) if lengths is None else None
            )
            if batch_lengths is not None:
                logits.append(out[torch.arange(len(batch), device=dev), batch_lengths.to(dev) - 1].cpu())
            for h in hooks:
                act = cache[h] if dtype is None else cache[h].to(dtype)
                acts[h].append(act.cpu())
    return {h: torch.cat(v) for h, v in acts.items()}, (torch.cat(logits) if logits else None)


def collect_residuals(
    model,
    tokens: Tensor,
    layers: Sequence[int],
    batch_size: int | None = None,
    lengths: Tensor | None = None,
    dtype: torch.dtype | None = torch.float32,
) -> tuple[dict[int, Tensor], Tensor | None]:
    """({layer: resid_post [n, pos, d]}, logits) of ``tokens`` [n, pos]: ``collect_activations`` at
    ``blocks.{layer}.hook_resid_post`` for each of ``layers``, keyed by layer in the order given, on the CPU.

    ``batch_size``, ``lengths`` and ``dtype`` as there: without ``lengths`` each pass stops after the deepest layer
    and the logits are None; with ``lengths`` [n] the logits are those [n, vocab] at each row's last real position."""
    acts, logits = collect_activations(
        model, tokens, [resid_post(layer) for layer in layers], batch_size, lengths=lengths, dtype=dtype
    )
    return {layer: acts[resid_post(layer)] for layer in layers}, logits
