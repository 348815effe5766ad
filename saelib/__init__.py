"""saelib: a thin library behind the notebooks reproducing Cunningham et al. (2023) and Bricken et al. (2023).

One module per concept (import what you need; nothing heavy is imported here):

- ``model``: load a causal LM offline, wrapped in TransformerLens' ``TransformerBridge`` for hooks.
- ``sources``, ``corpus``: the registry-packaged text corpus, tokenized, split by document, packed into contexts.
- ``harvest``, ``store``: activations streamed to disk, memory-mapped, resumable, traceable to their tokens.
- ``sae``, ``train``, ``resampling``, ``metrics``, ``synthetic``, ``dictionaries``: sparse autoencoders, their
  training and evaluation, and the dictionary chosen per layer.
- ``baselines``: PCA, ICA, neuron basis and random directions behind an SAE-like ``encode``.
- ``features``: any dictionary's feature activations, top activating contexts, circuitsvis views.
- ``fragments``, ``explanations``, ``llm_explainer``, ``autointerp``, ``comparison``: automated interpretability
  (Bills et al. protocol) with an offline explainer/simulator or LLM backends, and the Fig. 2 comparison set.
- ``decompositions``, ``patching``: exact-reconstruction feature patching (IOI counterfactuals).
- ``erasure``: concept erasure (LEACE, mean difference, SAE features) and its disruption.
- ``evaluation``, ``names``, ``tasks``: the model's own behaviour (held-out loss, IOI, gendered pronouns).
- ``profiles``, ``artifacts``, ``paths``, ``check``, ``stats``, ``plots``, ``viz``, ``progress``: plumbing.
"""
