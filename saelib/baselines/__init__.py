"""Stage 4b, what the SAEs are compared with: PCA, ICA, the neuron basis and random directions behind an SAE-like
``encode`` (``directions``), and the exact decomposition of an activation into any dictionary's features plus an error
term (``decompositions``), on which feature patching rests."""
