"""Stage 6, experiments on the model through a dictionary: feature patching for IOI counterfactuals (``patching``;
its greedy search shipped and replayed: ``greedy``) and concept erasure with LEACE, mean difference and SAE features
(``erasure``)."""
