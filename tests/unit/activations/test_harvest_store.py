"""Harvest + store on a tiny random GPT-NeoX: values, provenance, shuffling, resume and integrity."""

import os

import numpy as np
import pytest
import torch

import saelib.activations.harvest as harvest_mod
from saelib.activations.harvest import harvest
from saelib.activations.store import (
    CHECKSUMS,
    COMPLETE,
    ActivationStore,
    CorruptStoreError,
    IncompleteStoreError,
    file_sha256,
    hook_file,
)
from saelib.model.loader import UnknownHookError
from saelib.text.corpus import PackedContexts

HOOKS = ["blocks.0.hook_resid_post", "blocks.0.mlp.hook_post"]


def contexts(n=10, length=6, seed=0):
    rng = np.random.default_rng(seed)
    return PackedContexts(
        tokens=rng.integers(5, 1000, size=(n, length)),
        source=np.zeros(n, dtype=int),
        offset=np.arange(n) * length,
        sources=("toy",),
        repeats={"toy": 1.0},
    )


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


def test_bfloat16_harvest_is_close_to_float32_and_keyed_apart(tiny_model):
    ctx = contexts()
    exact = run(tiny_model, ctx, dtype="float32")
    fast = run(tiny_model, ctx, dtype="float32", precision="bfloat16")
    assert fast.dir != exact.dir and fast.config["precision"] == "bfloat16" and exact.config["precision"] == "float32"
    for hook in HOOKS:
        a, b = np.asarray(exact.activations(hook)), np.asarray(fast.activations(hook))
        rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
        assert 0 < np.median(rel) < 0.02  # bfloat16 matmuls did run (rows differ), and only by their rounding
    with pytest.raises(ValueError, match="precision must be one of"):
        run(tiny_model, ctx, precision="fp16")


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


def killed_harvest(model, ctx, monkeypatch):
    """A harvest "killed" after two batches (two hooks each) landed; returns its partial folder."""
    calls = {"n": 0}
    real = harvest_mod._write_rows

    def dying(*args, **kw):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(harvest_mod, "_write_rows", dying)
    with pytest.raises(KeyboardInterrupt):
        run(model, ctx, dtype="float32")
    monkeypatch.setattr(harvest_mod, "_write_rows", real)
    return next((p for p in (harvest_mod.keyed_dir("activations", "harvest", None).parent).iterdir()))


def direct(model, ctx, hook):
    _, cache = model.run_with_cache(torch.from_numpy(ctx.tokens), names_filter=[hook])
    return cache[hook].reshape(ctx.tokens.size, -1).numpy()


def test_interrupted_harvest_is_never_read_and_resumes(tiny_model, monkeypatch):
    ctx = contexts()
    partial = killed_harvest(tiny_model, ctx, monkeypatch)
    assert not (partial / COMPLETE).exists()
    with pytest.raises(IncompleteStoreError, match="resume"):
        ActivationStore(partial)

    real = harvest_mod._write_rows
    seen = []
    monkeypatch.setattr(harvest_mod, "_write_rows", lambda fd, off, row, *a: seen.append(row) or real(fd, off, row, *a))
    store = run(tiny_model, ctx, dtype="float32")
    assert store.dir == partial and min(seen) == 6 * 6  # resumed after the two finished batches of 3 contexts
    np.testing.assert_allclose(store.activations(HOOKS[1]), direct(tiny_model, ctx, HOOKS[1]), atol=1e-5)
    store.verify()  # the checksums hashed across the interruption are those of the finished files


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_resume_starts_over_when_a_hook_file_was_lost(tiny_model, monkeypatch, damage):
    ctx = contexts()
    path = hook_file(killed_harvest(tiny_model, ctx, monkeypatch), HOOKS[0])
    path.unlink() if damage == "delete" else os.truncate(path, path.stat().st_size // 2)
    with pytest.warns(UserWarning, match=rf"from context 0: {HOOKS[0]}.npy (is missing|is \d+ bytes, expected)"):
        store = run(tiny_model, ctx, dtype="float32")
    for hook in HOOKS:  # no rows left as zeros by the resume
        np.testing.assert_allclose(store.activations(hook), direct(tiny_model, ctx, hook), atol=1e-5)
    store.verify()


def test_truncated_store_is_rejected(tiny_model):
    store = run(tiny_model, contexts(), dtype="float32")
    path = hook_file(store.dir, HOOKS[0])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IncompleteStoreError, match=rf"{HOOKS[0]}.npy is \d+ bytes, expected \d+.*Delete the folder"):
        ActivationStore(store.dir)


def test_store_without_config_is_a_clear_error(tiny_model):
    store = run(tiny_model, contexts(), dtype="float32")
    (store.dir / "config.json").unlink()
    with pytest.raises(IncompleteStoreError, match="config.json is missing.*Delete the folder and run the harvest"):
        ActivationStore(store.dir)


def test_rows_zeroed_in_place_fail_verification(tiny_model):
    store = run(tiny_model, contexts(), dtype="float32")
    recorded = harvest_mod.read_json(store.dir / CHECKSUMS)["sha256"]
    assert recorded == {p.name: file_sha256(p) for p in store.files()}
    store.verify()
    arr = np.load(hook_file(store.dir, HOOKS[1]), mmap_mode="r+")
    arr[5:9] = 0
    arr.flush()
    del arr
    ActivationStore(store.dir)  # opening checks sizes only: still cheap, still opens
    with pytest.raises(CorruptStoreError, match=rf"{HOOKS[1]}.npy does not match its sha256"):
        store.verify()


def test_store_without_checksums_can_record_them(tiny_model):
    store = run(tiny_model, contexts(), dtype="float32")
    (store.dir / CHECKSUMS).unlink()  # as a store harvested before checksums existed
    with pytest.raises(IncompleteStoreError, match="record_checksums"):
        store.verify()
    store.record_checksums()
    store.verify()


def test_unknown_hook_and_bad_dtype(tiny_model):
    with pytest.raises(UnknownHookError):
        harvest(tiny_model, ["blocks.0.hook_resid_psot"], contexts(), corpus_name="toy", progress=False)
    with pytest.raises(ValueError, match="dtype"):
        run(tiny_model, contexts(), dtype="int8")


def test_float16_overflow_is_an_error(tiny_model, monkeypatch):
    real = harvest_mod._write_rows
    monkeypatch.setattr(harvest_mod, "_write_rows", lambda fd, off, row, acts, *a: real(fd, off, row, acts * 1e6, *a))
    with pytest.raises(FloatingPointError, match="overflow float16, first at row 0 .*dtype='float32'"):
        run(tiny_model, contexts())


def test_nan_activations_are_not_reported_as_overflow(tiny_model, monkeypatch):
    real = harvest_mod._write_rows

    def poisoned(fd, off, row, acts, *a):
        acts = acts.clone()
        acts[1, 2, 0] = float("nan")  # context 1, position 2 of the first batch
        return real(fd, off, row, acts, *a)

    monkeypatch.setattr(harvest_mod, "_write_rows", poisoned)
    with pytest.raises(
        FloatingPointError,
        match=rf"NaN activations at {HOOKS[0]}, first at row 8 \(context 1, "
        r"position 2\): .*model or input problem",
    ) as err:
        run(tiny_model, contexts())
    assert "dtype='float32'" not in str(err.value)


def test_contexts_longer_than_the_model_are_refused(tiny_model):
    with pytest.raises(ValueError, match="contexts of 600 tokens are longer than the model's maximum of 512"):
        run(tiny_model, contexts(n=2, length=600))
