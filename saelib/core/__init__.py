"""Shared plumbing used by every stage: artifact folders keyed by config and code revision (``artifacts``,
``revision``, ``paths``), run profiles (``profiles``), notebook parameters (``params``), notebook checks (``check``),
intervals (``stats``), figures (``plots``) and progress bars (``progress``)."""
