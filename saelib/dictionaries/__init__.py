"""Stage 4, dictionaries: sparse autoencoders (``sae``: Cunningham et al.'s tied and Bricken et al.'s untied SAE,
TopK, BatchTopK, JumpReLU, and SAELens's file format), their training (``train``) with dead-feature resampling
(``resampling``), their metrics (``metrics``), synthetic data with known features (``synthetic``), the release tier
(``release``, ``release_comparison``, ``matched_l0``), its manifest as typed records (``manifest``) and the
dictionaries chosen per layer or shipped with the repository (``shipped``, re-exported here)."""

from saelib.dictionaries.shipped import (
    DictionaryIntegrityError,
    choose,
    chosen,
    load_chosen,
    load_manifest,
    load_release,
    record,
    release_manifest,
    release_names,
    release_sweep,
)

__all__ = [
    "DictionaryIntegrityError",
    "choose",
    "chosen",
    "load_chosen",
    "load_manifest",
    "load_release",
    "record",
    "release_manifest",
    "release_names",
    "release_sweep",
]
