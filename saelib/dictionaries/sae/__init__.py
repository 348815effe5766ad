"""Sparse autoencoders, one module per architecture: the tied SAE of Cunningham et al. (2023), the untied SAE of
Bricken et al. (2023), and TopK (Gao et al. 2024), BatchTopK (Bussmann et al. 2024) and JumpReLU (Rajamanoharan et
al. 2024), which share the untied SAE's parameters.

All are *ensembles*: every parameter carries a leading ``model`` axis, so several sparsity settings (alphas) of one
dictionary size train together on the same batch; Adam is elementwise, so this is exactly equivalent to training
them one after another. ``ensemble.member(i)`` gives a single-member copy. ``encode``/``decode`` treat a one-member
SAE as SAELens does (x [..., d_in] <-> codes [..., n_features], no gradients unless ``grad=True``);
``encode_members``/``decode_members`` run every member (x [batch, d_in] -> [member, batch, n_features]).
"""

from saelib.dictionaries.sae.base import (
    ARCHITECTURES,
    SAE,
    Architecture,
    SAEConfig,
    attach_metrics,
    load_sae,
    sae_class,
    save_sae,
)
from saelib.dictionaries.sae.batchtopk import BatchTopKSAE
from saelib.dictionaries.sae.jumprelu import JumpReLUSAE
from saelib.dictionaries.sae.tied import TiedSAE
from saelib.dictionaries.sae.topk import TopKSAE
from saelib.dictionaries.sae.untied import UntiedSAE

__all__ = [
    "ARCHITECTURES",
    "SAE",
    "Architecture",
    "BatchTopKSAE",
    "JumpReLUSAE",
    "SAEConfig",
    "TiedSAE",
    "TopKSAE",
    "UntiedSAE",
    "attach_metrics",
    "load_sae",
    "sae_class",
    "save_sae",
]
