"""The local LLM backend on the bundled model: the explainer answers in words and the paper's "all at once"
simulator reads one expected level per token, even when a record contains the word "unknown" itself."""

import numpy as np
import pytest

from saelib.interp.fragments import Record
from saelib.interp.llm_explainer import LLMExplainer, LocalChatBackend, LogprobSimulator


@pytest.fixture(scope="module")
def backend():
    return LocalChatBackend()


def test_local_explainer_writes_an_explanation(backend):
    recs = [Record([" I", " love", " my", " cat", "."], np.array([0, 0, 0, 5.0, 0]))] * 2
    explanation = LLMExplainer(backend, max_tokens=24).explain(recs)
    assert isinstance(explanation, str) and any(ch.isalpha() for ch in explanation)


def test_logprob_simulator_gives_one_level_per_token(backend):
    sim = LogprobSimulator(backend)
    records = [[" the", " cat", " sat"], [" an", " unknown", " value", "\n", "unknown"]]
    out = sim.simulate("the word cat", records)
    assert [len(o) for o in out] == [3, 5]
    assert all(np.isfinite(o).all() and (o >= 0).all() and (o <= 9).all() for o in out)


def test_logprob_slots_sit_right_after_each_tab(backend):
    sim = LogprobSimulator(backend)
    tokens = [" an", " unknown", "\t", "unknown", " end"]
    ids, slots = sim._ids_and_slots("anything", tokens)
    tab = backend.tokenizer.encode("\t", add_special_tokens=False)
    assert len(slots) == len(tokens)
    for s in slots:  # each slot's token ends with the tab, and "unknown" follows
        assert backend.tokenizer.decode(ids[0, s : s + 1]).endswith("\t") or ids[0, s].item() in tab
        assert backend.tokenizer.decode(ids[0, s + 1 : s + 2]).startswith("unknown")


def test_logprob_simulator_unembeds_only_the_slots_with_the_same_levels(backend):
    import torch

    sim = LogprobSimulator(backend)
    tokens = [" the", " cat", " sat", " on", " it"]
    ids, slots = sim._ids_and_slots("the word cat", tokens)
    with torch.no_grad():
        full = backend.model(ids).logits[0, slots][:, sim.digit_ids]
    expected = (full.float().softmax(-1) @ torch.arange(10, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(sim.simulate("the word cat", [tokens])[0], expected, rtol=1e-4, atol=1e-4)
