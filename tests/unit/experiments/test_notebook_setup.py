"""``setup(PROFILE)``: the one call every numbered notebook starts with."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from saelib.core.profiles import UnknownProfileError
from saelib.experiments import notebook_setup


def test_setup_seeds_sets_the_width_and_loads_model_and_corpus(monkeypatch, tiny_model):
    monkeypatch.setattr(notebook_setup, "load_model", lambda device: tiny_model)
    monkeypatch.setattr(notebook_setup, "corpus_for_model", lambda model: "corpus")
    nb = notebook_setup.setup("dev", display_width=99)
    assert nb.profile.name == "dev" and nb.model is tiny_model and nb.corpus == "corpus"
    assert nb.tokenizer is tiny_model.tokenizer
    assert pd.get_option("display.width") == 99
    first = torch.rand(1)
    notebook_setup.setup("dev")
    assert torch.equal(first, torch.rand(1))  # the profile's seed, set again


def test_setup_names_the_valid_profiles_for_an_unknown_one():
    with pytest.raises(UnknownProfileError, match="Valid profiles"):
        notebook_setup.setup("nope")
