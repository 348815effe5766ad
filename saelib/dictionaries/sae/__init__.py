"""Sparse autoencoders: the tied SAE of Cunningham et al. (2023) and the untied SAE of Bricken et al. (2023).

Both are *ensembles*: every parameter carries a leading ``model`` axis, so several sparsity penalties (alphas) of one
dictionary size train together on the same batch with batched matmuls; Adam is elementwise, so this is exactly
equivalent to training them one after another. ``ensemble[i]`` gives a single-member view.
"""

from saelib.dictionaries.sae.base import SAE, SAEConfig, attach_metrics, load_sae, save_sae
from saelib.dictionaries.sae.tied import TiedSAE
from saelib.dictionaries.sae.untied import UntiedSAE

__all__ = ["SAE", "SAEConfig", "TiedSAE", "UntiedSAE", "attach_metrics", "load_sae", "save_sae"]
