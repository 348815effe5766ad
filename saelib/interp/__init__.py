"""Stage 5, interpretability: any dictionary's feature activations and top contexts (``features``), readable token
views (``viz``), held-out fragments (``fragments``), explanation and simulation (``explanations`` offline,
``llm_explainer`` through an LLM endpoint), the Bills et al. scoring protocol (``autointerp``) and the Fig. 2 method
set (``comparison``)."""
