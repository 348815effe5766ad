"""saelib: a thin library behind the notebooks reproducing Cunningham et al. (2023) and Bricken et al. (2023).

Subpackages follow the pipeline, text -> model -> activations -> dictionaries -> interpretability -> experiments
(import what you need; nothing heavy is imported here):

- ``text``: corpora read from registry packages (``sources``: one opener per archive format, one reader per kind of
  text, ``local`` for your own ``.txt``/``.jsonl`` folder), tokenized and packed (``corpus``), ``names``, ``tasks``.
- ``model``: offline loading behind TransformerLens hooks (``loader``), the de-quantized GGUF cache (``cache``), the
  model's own behaviour (``behaviour``: held-out loss, IOI and pronoun logits).
- ``activations``: ``harvest`` (streamed to disk, resumable) and ``store`` (memory-mapped, checksummed, traceable).
- ``dictionaries``: ``sae`` (tied: Cunningham et al.; untied: Bricken et al.; SAELens format), ``train``,
  ``resampling``, ``metrics``, ``synthetic``, ``release`` (the shipped tier) and ``shipped`` (loading by name).
- ``baselines``: PCA, ICA, neuron basis and random directions (``directions``); exact feature + error
  decompositions for patching (``decompositions``).
- ``interp``: feature activations and views (``features``, ``tokens``, ``viz``), automated interpretability
  (``fragments``, ``explanations``, ``llm_explainer``, ``autointerp``, ``comparison``) and an explanation-free
  measure (``concentration``).
- ``experiments``: IOI feature patching (``patching``) and concept erasure (``erasure``).
- ``core``: artifacts keyed by config and code revision, paths, profiles, notebook parameters, checks, intervals,
  verdict tables, plots, progress bars.
"""

import os

# pyarrow (imported by TransformerLens through ``datasets``) otherwise reserves about 1 GB of address space for its
# own allocator's arenas; with the system allocator a model load fits ``ulimit -v 3000000`` (see
# ``saelib.model.loader.load_model``). It is read when pyarrow is first imported, so it is set before anything else.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
