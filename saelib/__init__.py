"""saelib: a thin library behind the notebooks reproducing Cunningham et al. (2023) and Bricken et al. (2023).

One module per concept (import what you need; nothing heavy is imported here):

- ``model``: load a causal LM offline, wrapped in TransformerLens' ``TransformerBridge`` for hooks.
- ``sources``, ``corpus``: the registry-packaged text corpus, tokenized, split by document, packed into contexts.
- ``harvest``, ``store``: activations streamed to disk, memory-mapped, resumable, traceable to their tokens.
- ``sae``, ``train``, ``resampling``, ``metrics``, ``synthetic``, ``dictionaries``: sparse autoencoders, their
  training and evaluation, and the dictionary chosen per layer.
- ``baselines``: PCA, ICA, neuron basis and random directions behind an SAE-like ``encode``.
- ``evaluation``, ``names``, ``tasks``: the model's own behaviour (held-out loss, IOI, gendered pronouns).
- ``profiles``, ``artifacts``, ``paths``, ``check``, ``stats``, ``plots``, ``viz``, ``progress``: plumbing.
"""
