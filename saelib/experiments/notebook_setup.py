"""What every numbered notebook does first, in one call: ``setup(PROFILE)``.

The profile by name (``saelib.core.profiles``), torch's global seed set from it, pandas' display width, the model on
the profile's device (``saelib.model.load_model``, cached per process) and the corpus tokenized for it (built on first
use, then cached). Notebook 00 keeps these steps apart because showing them is its subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from saelib.activations.harvest import corpus_for_model
from saelib.core.profiles import Profile, get_profile
from saelib.model import load_model
from saelib.text.corpus import Corpus


@dataclass(frozen=True)
class NotebookSetup:
    """The objects a notebook works with after ``setup``."""

    profile: Profile  # the sizes every section reads (``profile.sae``, ``profile.erasure``, ...)
    model: Any  # the TransformerLens bridge ``load_model`` returns
    corpus: Corpus  # the default corpus, tokenized with the model's tokenizer

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer


def setup(profile_name: str, display_width: int = 140) -> NotebookSetup:
    """Load ``profile_name``'s profile, seed torch with its seed, set pandas' display width, load the model on the
    profile's device and the corpus for its tokenizer. An unknown profile name raises ``UnknownProfileError``
    listing the known ones (``get_profile``)."""
    profile = get_profile(profile_name)
    torch.manual_seed(profile.seed)
    pd.set_option("display.width", display_width)
    model = load_model(device=profile.device)
    return NotebookSetup(profile, model, corpus_for_model(model))
