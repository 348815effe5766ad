"""Running part of the model: the residual stream after one block, carried through the blocks that follow it.

Rotary position embeddings and the causal mask are rebuilt as the model's own forward does (tested against a full
forward pass), so an edited residual at layer ``a`` gives the residual at a later layer ``b`` or the logits without
recomputing the blocks up to ``a``. Differentiable with respect to the input residual.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def run_blocks(model, resid: Tensor, after_layer: int, through_layer: int | None = None) -> Tensor:
    """The output of block ``through_layer`` (default: the last) [n, pos, d], given ``resid`` [n, pos, d], the output
    of block ``after_layer`` (``blocks.{after_layer}.hook_resid_post``)."""
    last = len(model.blocks) - 1 if through_layer is None else through_layer
    if not -1 <= after_layer <= last < len(model.blocks):
        raise ValueError(f"need -1 <= after_layer ({after_layer}) <= through_layer ({last}) < {len(model.blocks)}")
    n, length, _ = resid.shape
    pos = torch.arange(length, device=resid.device)[None].expand(n, length)
    cos_sin = model.rotary_emb(resid, pos) if hasattr(model, "rotary_emb") else None
    causal = torch.full((length, length), torch.finfo(resid.dtype).min, device=resid.device).triu(1)[None, None]
    h = resid
    for block in model.blocks[after_layer + 1 : last + 1]:
        h = block(h, attention_mask=causal, position_ids=pos, position_embeddings=cos_sin)
        h = h[0] if isinstance(h, tuple) else h
    return h
