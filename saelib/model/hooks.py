"""Hook names: building them from a layer and reading the layer back, in the spirit of TransformerLens's
``get_act_name``. Plain string functions, importable without loading a model.

- ``resid_post(layer)``: the residual stream after block ``layer`` (``blocks.{layer}.hook_resid_post``);
- ``mlp_post(layer)``: the MLP's hidden activations inside block ``layer`` (``blocks.{layer}.mlp.hook_post``);
- ``layer_of(hook)``: the block index of a ``blocks.N.…`` hook; a ValueError for a hook outside the blocks;
- ``stop_layer(hooks)``: the ``stop_at_layer`` that runs the model just far enough to compute every hook.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

BLOCK_PREFIX = re.compile(r"^blocks\.(\d+)\.")  # the "blocks.N." that starts every hook inside block N

_BEFORE_BLOCKS = ("embed.", "hook_embed", "hook_pos_embed", "rotary_emb.")


def resid_post(layer: int) -> str:
    """``blocks.{layer}.hook_resid_post``: the residual stream after block ``layer``."""
    return f"blocks.{layer}.hook_resid_post"


def mlp_post(layer: int) -> str:
    """``blocks.{layer}.mlp.hook_post``: the MLP's hidden activations (after the nonlinearity) in block ``layer``."""
    return f"blocks.{layer}.mlp.hook_post"


def layer_of(hook: str) -> int:
    """Block index of a hook (``blocks.5.hook_resid_post`` -> 5, ``blocks.14.mlp.hook_post`` -> 14); a ValueError
    for a hook that belongs to no block (``hook_embed``, ``ln_final.hook_normalized``)."""
    m = BLOCK_PREFIX.match(hook)
    if m is None:
        raise ValueError(
            f"hook {hook!r} belongs to no block: expected a name starting with 'blocks.N.', "
            "e.g. 'blocks.5.hook_resid_post'"
        )
    return int(m.group(1))


def is_resid_post(hook: str) -> bool:
    """Whether ``hook`` is a block's residual output, ``blocks.N.hook_resid_post``."""
    return BLOCK_PREFIX.match(hook) is not None and hook.endswith(".hook_resid_post")


def stop_layer(hooks: Sequence[str]) -> int | None:
    """``stop_at_layer`` that runs just far enough to compute every hook (None = the whole model): one past the
    deepest block, 0 when every hook comes before the first block."""
    deepest = -1
    for hook in hooks:
        if BLOCK_PREFIX.match(hook):
            deepest = max(deepest, layer_of(hook))
        elif not hook.startswith(_BEFORE_BLOCKS):
            return None  # after the last block (ln_final, unembed): the whole model
    return deepest + 1
