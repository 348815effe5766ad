"""Stage 6, experiments on the model through a dictionary: feature patching for IOI counterfactuals (``patching``)
and concept erasure with LEACE, mean difference and SAE features (``erasure``)."""
