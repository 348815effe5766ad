"""Stage 3, activations: the model's activations at chosen hooks streamed to disk, resumable (``harvest``), and read
back memory-mapped with each row traceable to its context and token (``store``)."""
