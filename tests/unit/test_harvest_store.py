"""Harvest + store on a tiny random GPT-NeoX: values, provenance, shuffling, resume and integrity."""

import numpy as np
import pytest
import torch

import saelib.harvest as harvest_mod
from saelib.corpus import PackedContexts
from saelib.harvest import harvest
from saelib.model import UnknownHookError
from saelib.store import COMPLETE, ActivationStore, IncompleteStoreError, hook_file

HOOKS = ["blocks.0.hook_resid_post", "blocks.0.mlp.hook_post"]


def contexts(n=10, length=6, seed=0):
    rng = np.random.default_rng(seed)
    return PackedContexts(tokens=rng.integers(5, 1000, size=(n, length)), source=np.zeros(n, dtype=int),
                          offset=np.arange(n) * length, sources=("toy",), repeats={"toy": 1.0})


def run(model, ctx, **kw):
    return harvest(model, HOOKS, ctx, corpus_name="toy", batch_size=3, progress=False, **kw)


def test_store_matches_direct_forward_and_traces_rows(tiny_model):
    ctx = contexts()
    store = run(tiny_model, ctx, dtype="float32")
    assert store.n_rows == 60 and store.width(HOOKS[0]) == 64 and store.width(HOOKS[1]) == 256
    _, cache = tiny_model.run_with_cache(torch.from_numpy(ctx.tokens), names_filter=list(HOOKS))
    for hook in HOOKS:
        np.testing.assert_allclose(store.activations(hook), cache[hook].reshape(60, -1).numpy(), atol=1e-5)
    prov = store.provenance(np.array([0, 13, 59]))
    assert prov.context.tolist() == [0, 2, 9] and prov.position.tolist() == [0, 1, 5]
    assert prov.token.tolist() == [ctx.tokens[0, 0], ctx.tokens[2, 1], ctx.tokens[9, 5]]
    assert prov.source == ["toy"] * 3


def test_float16_store_is_close_and_cached(tiny_model):
    ctx = contexts()
    a = run(tiny_model, ctx)
    assert a.config["dtype"] == "float16" and a.activations(HOOKS[0]).dtype == np.float16
    assert run(tiny_model, ctx).dir == a.dir  # same config: reused
    assert run(tiny_model, contexts(seed=1)).dir != a.dir  # other contexts: a new store


def test_batches_shuffle_every_row_once_deterministically(tiny_model):
    store = run(tiny_model, contexts(), dtype="float32")
    batches = list(store.batches(HOOKS[0], batch_size=7, seed=3, block_rows=8, buffer_blocks=2))
    rows = torch.cat(batches)
    assert rows.shape == (60, 64) and all(len(b) <= 7 for b in batches)
    full = torch.from_numpy(np.array(store.activations(HOOKS[0])))
    assert torch.equal(rows[rows[:, 0].argsort()], full[full[:, 0].argsort()])  # same multiset of rows
    assert not torch.equal(rows, full)  # shuffled
    again = torch.cat(list(store.batches(HOOKS[0], batch_size=7, seed=3, block_rows=8, buffer_blocks=2)))
    assert torch.equal(rows, again)


def test_interrupted_harvest_is_never_read_and_resumes(tiny_model, monkeypatch):
    ctx = contexts()
    calls = {"n": 0}
    real = harvest_mod._write_rows

    def dying(*args, **kw):
        calls["n"] += 1
        if calls["n"] > 4:  # two batches (two hooks each) land, then the process "dies"
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(harvest_mod, "_write_rows", dying)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_model, ctx, dtype="float32")
    partial = next((p for p in (harvest_mod.keyed_dir("activations", "harvest", None).parent).iterdir()))
    assert not (partial / COMPLETE).exists()
    with pytest.raises(IncompleteStoreError, match="resume"):
        ActivationStore(partial)

    monkeypatch.setattr(harvest_mod, "_write_rows", real)
    seen = []
    monkeypatch.setattr(harvest_mod, "_write_rows", lambda fd, off, row, *a: (seen.append(row), real(fd, off, row, *a)))
    store = run(tiny_model, ctx, dtype="float32")
    assert store.dir == partial and min(seen) == 6 * 6  # resumed after the two finished batches of 3 contexts
    _, cache = tiny_model.run_with_cache(torch.from_numpy(ctx.tokens), names_filter=list(HOOKS))
    np.testing.assert_allclose(store.activations(HOOKS[1]), cache[HOOKS[1]].reshape(60, -1).numpy(), atol=1e-5)


def test_truncated_store_is_rejected(tiny_model):
    store = run(tiny_model, contexts(), dtype="float32")
    path = hook_file(store.dir, HOOKS[0])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises((IncompleteStoreError, ValueError)):
        ActivationStore(store.dir)


def test_unknown_hook_and_bad_dtype(tiny_model):
    with pytest.raises(UnknownHookError):
        harvest(tiny_model, ["blocks.0.hook_resid_psot"], contexts(), corpus_name="toy", progress=False)
    with pytest.raises(ValueError, match="dtype"):
        run(tiny_model, contexts(), dtype="int8")


def test_float16_overflow_is_an_error(tiny_model, monkeypatch):
    real = harvest_mod._write_rows
    monkeypatch.setattr(harvest_mod, "_write_rows", lambda fd, off, row, acts, *a: real(fd, off, row, acts * 1e6, *a))
    with pytest.raises(FloatingPointError, match="float32"):
        run(tiny_model, contexts())
