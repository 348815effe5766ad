"""Feature absorption (saelib.interp.absorption) on synthetic residuals with a known answer: no model, no files."""

import random

import numpy as np
import pytest
import torch

from saelib.dictionaries.sae.base import SAEConfig
from saelib.dictionaries.sae.untied import UntiedSAE
from saelib.interp import absorption as ab

D = 96  # residual width of the synthetic model
S = ab.LETTERS.index("s")
SHORT_DIMS = range(40, 46)  # one token direction per "short" word of letter s


def _basis(seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((D, D)))
    return q.T  # rows: orthonormal directions


def _task(per_letter: int = 16, s_words: int = 24, prompts_per_word: int = 1) -> ab.FirstLetterTask:
    words = [f" {letter}w{j}" for letter in ab.LETTERS for j in range(s_words if letter == "s" else per_letter)]
    train, test = ab.split_words(words, test_fraction=0.25, seed=0)
    rows = [(w, False) for w in train for _ in range(prompts_per_word)]
    rows += [(w, True) for w in test for _ in range(prompts_per_word)]
    return ab.FirstLetterTask(
        tuple(w for w, _ in rows),
        np.array([ab.LETTERS.index(ab.first_letter(w)) for w, _ in rows]),
        np.array([t for _, t in rows]),
        tuple(w for w, _ in rows),  # the prompts are not used without a model
    )


def _short_words(task: ab.FirstLetterTask) -> list[str]:
    """Three train and three test words of letter s: the tokens whose first-letter direction gets absorbed."""
    s_train = sorted({w for w, t in zip(task.words, task.is_test) if ab.first_letter(w) == "s" and not t})
    s_test = sorted({w for w, t in zip(task.words, task.is_test) if ab.first_letter(w) == "s" and t})
    return s_train[:3] + s_test[:3]


def _residuals(task: ab.FirstLetterTask, basis: np.ndarray, short: list[str]) -> np.ndarray:
    rng = np.random.default_rng(1)
    x = 3.0 * basis[task.labels] + 0.3 * rng.standard_normal((len(task), D))
    for i, w in enumerate(task.words):
        if w in short:
            x[i] += 3.0 * basis[SHORT_DIMS[short.index(w)]]
    return x


def _absorbing_sae(basis: np.ndarray) -> UntiedSAE:
    """A general latent per letter (decoder = the letter's direction) whose s latent is inhibited by the short
    words' token directions, plus one latent per short word that fires on it and decodes to (s + token) / sqrt 2:
    the short words' first-letter direction is absorbed into their token latents."""
    n = 26 + len(SHORT_DIMS)
    sae = UntiedSAE(SAEConfig("untied", D, n, (0.0,)))
    w_enc = np.zeros((n, D))
    w_dec = np.zeros((D, n))
    b_enc = np.full(n, -1.5)
    for i in range(26):
        w_enc[i], w_dec[:, i] = basis[i], basis[i]
    for j, dim in enumerate(SHORT_DIMS):
        w_enc[S] -= 2.0 * basis[dim]
        w_enc[26 + j] = basis[dim]
        w_dec[:, 26 + j] = (basis[S] + basis[dim]) / np.sqrt(2)
        b_enc[26 + j] = -0.5
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor(w_enc, dtype=torch.float32)[None])
        sae.W_dec.copy_(torch.tensor(w_dec, dtype=torch.float32)[None])
        sae.b_enc.copy_(torch.tensor(b_enc, dtype=torch.float32)[None])
        sae.b_dec.zero_()
    return sae


@pytest.fixture(scope="module")
def planted_case():
    basis = _basis()
    task = _task()
    short = _short_words(task)
    x = _residuals(task, basis, short)
    probes = ab.train_letter_probes(x, task)
    return basis, task, short, x, probes


def test_split_is_by_word_and_prompts_follow_their_word():
    task = _task(prompts_per_word=2)
    train = {w for w, t in zip(task.words, task.is_test) if not t}
    test = {w for w, t in zip(task.words, task.is_test) if t}
    assert not train & test and len(train | test) == 25 * 16 + 24
    per_letter = np.bincount([ab.LETTERS.index(w[1]) for w in test])
    assert all(n == 4 for letter, n in zip(ab.LETTERS, per_letter) if letter != "s")
    again = ab.split_words(sorted(train | test), 0.25, seed=0)
    assert set(again[1]) == test  # seeded: the same words again


def test_prompt_follows_saebench_pattern():
    prompt = ab.icl_prompt(" cat", [" dog", " cat", " sun"], 2, random.Random(0))
    lines = prompt.split("\n")
    assert lines[0] == "" and lines[-1] == " cat has the first letter:"
    assert sorted(lines[1:3]) == [" dog has the first letter: D", " sun has the first letter: S"]


def test_single_token_words_keeps_lowercase_single_tokens():
    class Stub:
        vocab = {"Ġcat": 0, "Ġdog": 1, "ĠDog": 2, "Ġa": 3, "cat": 4, "Ġx1": 5, "Ġsplit": 6}

        def get_vocab(self):
            return self.vocab

        def convert_tokens_to_string(self, tokens):
            return tokens[0].replace("Ġ", " ")

        def encode(self, text, add_special_tokens=False):
            return [9, 9] if text == " split" else [self.vocab[text.replace(" ", "Ġ")]]

    words = ab.single_token_words(Stub())
    assert words["c"] == [" cat"] and words["d"] == [" dog"] and not words["a"] and not words["s"]
    assert ab.sample_words(words, 5) == [" cat", " dog"]


def test_probes_pass_the_gate_on_separable_letters(planted_case):
    _, _, _, _, probes = planted_case
    passed, failed = ab.gate_letters(probes)
    assert len(passed) == 26 and not failed and probes.f1.min() > 0.95


def test_planted_absorption_gives_the_known_rate(planted_case):
    basis, task, short, x, probes = planted_case
    report = ab.measure_absorption(x, task, probes, _absorbing_sae(basis), "planted absorption")
    s = next(r for r in report.letters if r.letter == "s")
    n_s_test = int((task.is_test & (task.labels == S)).sum())
    assert s.main_latents == (S,)  # the token latents each cover one train word: no F1 jump, not main
    assert s.n_probe_true_positives == n_s_test
    assert s.n_full_absorption == 3 and s.absorption_rate == pytest.approx(3 / n_s_test)
    assert set(s.absorbing_latents) <= {26 + j for j in range(len(SHORT_DIMS))}
    assert s.mean_absorption_fraction == pytest.approx(3 / n_s_test)  # main latent silent: fraction 1 on those
    assert all(r.absorption_rate == 0 for r in report.letters if r.letter != "s")
    absorbed = {w.word for w in report.words if w.is_full_absorption}
    assert absorbed == set(short[3:])  # exactly the test words whose s latent was inhibited
    assert report.summary.absorption_rate.mean == pytest.approx(3 / len(report.words))
    assert report.summary.absorption_rate.n == len(report.words)  # one cluster per word


def test_positive_control_has_no_absorption_and_probe_level_f1(planted_case):
    _, task, _, x, probes = planted_case
    base = ab.random_dictionary(D, 192, x, target_l0=6.0, seed=0)
    report = ab.measure_absorption(x, task, probes, ab.planted_dictionary(base, probes), "planted")
    assert report.summary.absorption_rate.mean == 0.0
    assert all(r.main_latents[0] == ab.LETTERS.index(r.letter) for r in report.letters)
    assert report.summary.main_latent_firing_f1.mean == pytest.approx(report.summary.probe_f1.mean)
    assert report.summary.main_latent_f1.mean >= report.summary.probe_f1.mean - 0.05


def test_random_dictionary_matches_l0_and_has_low_main_latent_f1(planted_case):
    _, task, _, x, probes = planted_case
    sae = ab.random_dictionary(D, 192, x, target_l0=6.0, seed=0)
    report = ab.measure_absorption(x, task, probes, sae, "random")
    assert report.summary.l0_on_words == pytest.approx(6.0, rel=0.05)
    assert report.summary.main_latent_f1.mean < 0.5 < report.summary.probe_f1.mean
    assert report.summary.main_latent_firing_f1.mean < 0.5


def test_macro_f1_averages_letters_and_resamples_words():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], bool)
    est = ab.macro_f1(y, y.copy(), np.array([" a", " b", " c", " d"]))
    assert est.mean == 1.0 and est.lo == est.hi == 1.0 and est.n == 4
    half = ab.macro_f1(y, np.array([[1, 0], [0, 0], [0, 1], [0, 1]], bool), np.array([" a", " b", " c", " d"]))
    assert half.mean == pytest.approx((2 / 3 + 1) / 2) and half.lo < half.mean <= half.hi


def test_no_gated_letter_is_a_clear_error(planted_case):
    _, task, _, x, _ = planted_case
    noise = np.random.default_rng(2).standard_normal(x.shape)
    probes = ab.train_letter_probes(noise, task)
    with pytest.raises(ValueError, match="no letter passes the probe-F1 gate"):
        ab.measure_absorption(noise, task, probes, ab.random_dictionary(D, 64, noise, 4.0), "random")


def test_mismatched_shapes_are_clear_errors(planted_case):
    basis, task, _, x, probes = planted_case
    with pytest.raises(ValueError, match="one row per task prompt"):
        ab.measure_absorption(x[:-1], task, probes, _absorbing_sae(basis), "sae")
    with pytest.raises(ValueError, match="dictionary reads"):
        ab.dictionary_codes(_absorbing_sae(basis), x[:, :-1])
    with pytest.raises(ValueError, match="decoder"):
        ab.word_absorption(x[:3], np.zeros((3, 5)), basis[0], np.zeros((4, D)), [0])
    with pytest.raises(ValueError, match="one label, split flag and prompt per word"):
        ab.FirstLetterTask((" ab",), np.array([0, 1]), np.array([False]), (" ab",))
    with pytest.raises(ValueError, match="distinct"):
        ab.split_words([" ab", " ab"])
