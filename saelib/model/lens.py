"""Direct logit effects of residual-stream directions (the "logit lens" of a feature's decoder direction).

Linearised: the final RMSNorm's gain is applied, its scale ignored, and the layers after the hook are skipped (direct
path only), so the effects are informative at late layers and a rough guide at early ones.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from saelib.interp.tokens import readable_tokens
from saelib.model.hooks import layer_of

NORM_HANDLING = (
    "direct path through the unembedding: the final RMSNorm's gain is applied and its scale ignored "
    "(linearised), and the layers after the hook are skipped"
)


def _final_gain(model, width: int) -> torch.Tensor:
    norm = getattr(model.ln_final, "original_component", None)
    return norm.weight.float() if norm is not None else torch.ones(width, device=model.W_U.device)


def logit_lens(model, hook: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Map directions [k, d_in] at ``hook`` to direct logit effects [k, vocab]: W_Uᵀ (g ⊙ d), after the MLP's output
    matrix W_out for an ``mlp.hook_post`` hook. Computed where the model is; returned on the directions' device."""
    w_u = model.W_U.float()  # [d_model, vocab]
    gain = _final_gain(model, w_u.shape[0])
    w_out = model.blocks[layer_of(hook)].mlp.W_out.float() if ".mlp." in hook else None

    def lens(directions: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            d = directions.to(w_u.device).float()
            d = d if w_out is None else d @ w_out
            return ((d * gain) @ w_u).to(directions.device)

    return lens


def top_tokens(tokenizer, effect: torch.Tensor, k: int = 10) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` most boosted and most suppressed tokens of one effect vector [vocab], with their values."""
    up, down = torch.topk(effect, k), torch.topk(-effect, k)
    return {
        "boosts": list(zip(readable_tokens(tokenizer, up.indices.tolist()), up.values.tolist())),
        "suppresses": list(zip(readable_tokens(tokenizer, down.indices.tolist()), (-down.values).tolist())),
    }
