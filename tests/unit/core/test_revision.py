"""Artifact caches are keyed by code revision: changing the code behind a kind of artifact without bumping its
revision fails here; so does a changed model file."""

import shutil

import pytest

from saelib.activations import harvest, store
from saelib.core.revision import CODE_REVISIONS, fingerprint
from saelib.dictionaries import resampling, sae, train
from saelib.model import loader as model
from saelib.text import corpus

# kind -> the functions and classes whose code determines that kind of artifact
SOURCES = {
    "activations": lambda: (
        harvest.harvest,
        harvest._write_rows,
        harvest._open_outputs,
        harvest._prepare,
        model._load_hf,
        model.load_model,
        model._load_model,
    ),
    "saes": lambda: (
        train.train_saes,
        train._train,
        train.train_step,
        train._member_backward,
        train._backward,
        train.row_mask,
        train.outlier_rows,
        train.input_scale,
        train.lr_factor,
        train.l1_factor,
        train._build,
        train._masked_sample,
        train._batches,
        train.members_at_once,
        sae.SAE,
        sae.TiedSAE,
        sae.UntiedSAE,
        sae.TopKSAE,
        sae.BatchTopKSAE,
        sae.JumpReLUSAE,
        resampling.ResampleSchedule,
        resampling.resample_dead,
        store.ActivationStore.batches,
        store.ActivationStore.batch_rows,
        store.ActivationStore._buffers,
    ),
    "corpus": lambda: (corpus.build_corpus, corpus._tokenize_source, corpus.is_heldout),
}

# (revision, fingerprint) as last recorded. When a fingerprint changes: if results can change, bump the kind's
# number in saelib/core/revision.py; then record both here.
RECORDED = {
    # + a precision option (default float32, unchanged; the config gained a field, so every key changed): no bump
    # then inputs moved to the model's device and rows back to the host (no-ops on a CPU): no bump
    # then load_model's body moved into _load_model behind a MemoryError message (the same model): no bump
    # then _load_hf's return annotation names the transformers model and tokenizer types (mypy): no bump
    "activations": (2, "fdeffe129229532c"),
    # + a precision option, as for activations: no bump; then one member's gradients from leaf copies of its slices
    # (bit-identical weights: test_train.py::test_member_steps_match_autograd_through_the_shared_parameters) and the
    # input check once per batch instead of once per member: no bump
    # then the GPU path: rows optionally held on the device (the same batches), bookkeeping on the
    # training device, resampling's draw on the CPU generator; the batch order's code is fingerprinted too. The
    # same weights on a CPU (tests/unit/dictionaries/test_device.py): no bump
    # then TopK, BatchTopK and JumpReLU beside them: the loss reads loss_state (empty for tied and untied), the
    # class is picked by sae_class, TrainConfig gained dead_after_tokens; tied and untied results unchanged: no bump
    # then type annotations and casts for mypy (buffers declared on the classes, typed dicts, the untied SAE cast
    # where only it applies), a member's leaf gradient read once, and an empty batch outside data-parallel training
    # an error naming the step instead of an AttributeError on None: the same weights, no bump
    # then the ensemble's encode/decode renamed encode_members/decode_members, and encode/decode added with
    # SAELens's single-dictionary shapes (encode1/decode1 kept as aliases): a rename, no number changes, no bump
    # then _step renamed train_step (public, for the benchmarks): a rename, no bump
    "saes": (2, "2aaf5f035f5739f7"),
    # sources may be Source objects (own text): same corpora, no bump; then a source without text is an error
    # instead of a crash in np.concatenate: no bump
    "corpus": (1, "bc8f5eb68810c171"),
}


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_code_changes_come_with_a_revision(kind):
    revision, recorded = RECORDED[kind]
    now = fingerprint(*SOURCES[kind]())
    assert (CODE_REVISIONS[kind], now) == (revision, recorded), (
        f"the code behind {kind!r} artifacts changed (fingerprint {now}, recorded {recorded}). If it can change "
        f"results, bump CODE_REVISIONS[{kind!r}] in saelib/core/revision.py so old caches are not reused; then record "
        f"({CODE_REVISIONS[kind]}, {now!r}) in RECORDED here."
    )


def test_fingerprint_ignores_docstrings_and_comments_but_not_code():
    def documented():
        def f(x):
            """Doc."""
            return x + 1  # comment

        return f

    def plain():
        def f(x):
            return x + 1

        return f

    def changed():
        def f(x):
            return x + 2

        return f

    assert fingerprint(documented()) == fingerprint(plain()) != fingerprint(changed())


def test_bumping_a_revision_renames_the_artifact(monkeypatch):
    from saelib.core.artifacts import keyed_dir

    before = keyed_dir("saes", "sae", {"x": 1})
    monkeypatch.setitem(CODE_REVISIONS, "saes", CODE_REVISIONS["saes"] + 1)
    assert keyed_dir("saes", "sae", {"x": 1}) != before


def test_replaced_weights_never_reuse_a_store(tiny_neox_dir, tmp_path):
    import numpy as np
    import torch
    from transformers import GPTNeoXForCausalLM

    from saelib.text.corpus import PackedContexts

    folder = tmp_path / "model"
    shutil.copytree(tiny_neox_dir, folder)
    ctx = PackedContexts(np.arange(5, 37).reshape(4, 8), np.zeros(4, int), np.arange(4) * 8, ("toy",), {"toy": 1.0})
    hooks = ["blocks.0.hook_resid_post"]
    first = harvest.harvest(model.load_model(str(folder)), hooks, ctx, corpus_name="toy", progress=False)
    torch.manual_seed(1)
    GPTNeoXForCausalLM(GPTNeoXForCausalLM.from_pretrained(folder).config).save_pretrained(folder)  # new weights
    model.load_model.cache_clear()
    second = harvest.harvest(model.load_model(str(folder)), hooks, ctx, corpus_name="toy", progress=False)
    assert first.dir != second.dir
    assert first.config["model_sha256"] != second.config["model_sha256"]
