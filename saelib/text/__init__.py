"""Stage 1, text: English corpora read from registry packages (``sources``), tokenized and packed into contexts
(``corpus``; also a user's own ``.txt``/``.jsonl`` folder), name lists (``names``) and task prompts such as IOI and
gendered pronouns (``tasks``)."""
