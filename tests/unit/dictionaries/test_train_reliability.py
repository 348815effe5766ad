"""Training under hostile or careless input: planted checkpoints, resume with resampling, bad configs, empty or
corrupt stores, two processes on one config; the schedule and data-hygiene options."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import saelib.dictionaries.train as train_mod
from saelib.activations.harvest import harvest
from saelib.activations.store import hook_file
from saelib.dictionaries.resampling import ResampleSchedule
from saelib.dictionaries.train import (
    TrainConfig,
    TrainingDivergedError,
    count_batches,
    l1_factor,
    lr_factor,
    row_mask,
    train_saes,
)
from saelib.text.corpus import PackedContexts

HOOK = "blocks.1.hook_resid_post"


def _store(tiny_model, n=40, length=16, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(5, 1000, size=(n, length))
    ctx = PackedContexts(tokens, np.zeros(n, int), np.arange(n) * length, ("toy",), {"toy": 1.0})
    return harvest(tiny_model, [HOOK], ctx, corpus_name="toy", batch_size=8, dtype="float32", progress=False)


@pytest.fixture
def store(tiny_model):
    return _store(tiny_model)


def untied(**kw):  # on the random tiny model this kills and revives features at every resample
    base = dict(
        hook=HOOK,
        architecture="untied",
        ratios=(4.0,),
        alphas=(5.0,),
        epochs=30,
        resample=True,
        batch_size=32,
        lr=1e-2,
        checkpoint_every=4,
    )
    return TrainConfig(**{**base, **kw})


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['SAELIB_ARTIFACTS']}/PWNED",))


def test_planted_checkpoint_is_refused_and_never_runs(store, monkeypatch, isolated_artifacts):
    cfg = TrainConfig(HOOK, batch_size=64, epochs=3, checkpoint_every=2)
    real = train_mod.train_step
    monkeypatch.setattr(train_mod, "train_step", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        train_saes(store, cfg, progress=False)
    monkeypatch.setattr(train_mod, "train_step", real)  # not undo(): that would also drop the isolated artifacts folder
    directory = train_mod.keyed_dir("saes", "sae", {"train": cfg, "store": store.dir.name})
    torch.save({"state": _Exploit()}, directory / "checkpoint.pt")
    with pytest.raises(RuntimeError, match="not a checkpoint this code wrote"):
        train_saes(store, cfg, progress=False)
    assert not (isolated_artifacts / "PWNED").exists()


def test_resume_is_exact_when_resampling_revives_features(store, monkeypatch):
    reference = train_saes(store, untied(), progress=False)
    assert sum(reference.resampled[4.0]) > 0  # resampling acted
    import shutil

    shutil.rmtree(reference.directory)
    real_step, calls = train_mod.train_step, {"n": 0}

    def dying(*args):
        calls["n"] += 1
        if calls["n"] == 302:  # after the second resample (the schedule's steps are 80, 160, 240, 320 of 600)
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(train_mod, "train_step", dying)
    with pytest.raises(KeyboardInterrupt):
        train_saes(store, untied(), progress=False)
    monkeypatch.setattr(train_mod, "train_step", real_step)
    resumed = train_saes(store, untied(), progress=False)
    assert resumed.resampled == reference.resampled
    assert resumed.revival == reference.revival  # which features were reset and fired again survives the kill
    rev = reference.revival[4.0]
    assert 0 < rev["resampled_features"][0] <= sum(reference.resampled[4.0])  # distinct features <= resets
    assert 0 <= rev["fired_after_resample"][0] <= rev["resampled_features"][0]
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        torch.testing.assert_close(getattr(resumed.saes[4.0], name), getattr(reference.saes[4.0], name), rtol=0, atol=0)


def test_the_twin_without_resampling_is_the_same_run_until_the_first_resample(store):
    """The release's resampling pair: with and without resampling, everything else equal, the two runs log the same
    losses up to the first resample and part after it."""
    with_ = train_saes(store, untied(), progress=False, log_every=1)
    without = train_saes(store, untied(resample=False), progress=False, log_every=1)
    assert sum(with_.resampled[4.0]) > 0 and without.resampled[4.0] == []
    first = ResampleSchedule.scaled(with_.history[-1]["step"]).steps[0]
    pairs = list(zip(with_.history, without.history))
    assert all(a == b for a, b in pairs if a["step"] <= first) and len(pairs) > first  # the step's loss: before it
    assert pairs[first][0] != pairs[first][1]  # the first step after the resample already differs
    # silent features are counted at every resample point in both; where resampling acts it resets exactly those
    assert [sum(point) for point in with_.silent[4.0]] == with_.resampled[4.0]
    assert len(without.silent[4.0]) == 4 and without.silent[4.0][0] == with_.silent[4.0][0]


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(lr=float("nan")), "lr"),
        (dict(lr=0), "lr"),
        (dict(ratios=(float("inf"),)), "ratios"),
        (dict(checkpoint_every=0), "checkpoint_every"),
        (dict(max_rows=0), "max_rows"),
        (dict(max_rows=-1), "max_rows"),
        (dict(alphas=(True,)), "alphas"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(architecture="gated"), "architecture"),
        (dict(lr_warmup_fraction=0.8, lr_decay_fraction=0.5), "fractions"),
        (dict(outlier_norm_ratio=0.5), "outlier"),
    ],
)
def test_bad_config_is_rejected_with_the_field_named(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(HOOK, **bad)


def test_numpy_alphas_are_numbers():
    assert TrainConfig(HOOK, alphas=(np.float32(1e-3), np.float64(2e-3))).alphas[0] == np.float32(1e-3)


def test_a_store_with_no_usable_rows_is_an_error_not_an_untrained_sae(tiny_model):
    store = _store(tiny_model, n=8, length=1)  # every row is position 0, which training excludes
    with pytest.raises(ValueError, match="no rows"):
        train_saes(store, TrainConfig(HOOK, batch_size=4), progress=False)
    assert not any(store.dir.parent.parent.joinpath("saes").rglob("DONE.json"))


def test_non_finite_activation_is_named(store):
    arr = np.load(hook_file(store.dir, HOOK), mmap_mode="r+")
    arr[:] = np.nan  # a corrupt store
    arr.flush()
    with pytest.raises((FloatingPointError, TrainingDivergedError), match="corrupt"):
        train_saes(store, TrainConfig(HOOK, batch_size=64), progress=False)


def test_count_batches_is_exact(store):
    cfg = TrainConfig(HOOK, batch_size=48)
    mask = row_mask(store, cfg)
    for seed in (0, 5):
        n = sum(1 for _ in store.batches(HOOK, 48, seed=seed, row_mask=mask, block_rows=100, buffer_blocks=2))
        assert count_batches(store, 48, seed=seed, row_mask=mask, block_rows=100, buffer_blocks=2) == n


def test_schedule_shapes():
    cfg = TrainConfig(HOOK, lr_warmup_fraction=0.1, lr_decay_fraction=0.2, l1_warmup_fraction=0.05)
    f = [lr_factor(cfg, s, 100) for s in range(1, 101)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0 and f[50] == 1.0 and f[80] == 1.0 and f[-1] == pytest.approx(0.05)
    assert all(b <= a for a, b in zip(f[80:], f[81:])) and all(b >= a for a, b in zip(f[:10], f[1:11]))
    assert l1_factor(cfg, 1, 100) == pytest.approx(0.2) and l1_factor(cfg, 5, 100) == 1.0
    plain = TrainConfig(HOOK)
    assert {lr_factor(plain, s, 100) for s in range(1, 101)} == {1.0} and l1_factor(plain, 1, 100) == 1.0


def test_outlier_rows_are_excluded(store):
    arr = np.load(hook_file(store.dir, HOOK), mmap_mode="r+")
    arr[17] *= 1000  # a massive activation
    arr.flush()
    assert row_mask(store, TrainConfig(HOOK))[17]
    mask = row_mask(store, TrainConfig(HOOK, outlier_norm_ratio=20.0))
    assert not mask[17] and mask.sum() == row_mask(store, TrainConfig(HOOK)).sum() - 1


def test_two_processes_training_one_config_agree(store, isolated_artifacts):
    script = textwrap.dedent(f"""
        import hashlib, sys
        from saelib.activations.store import ActivationStore
        from saelib.dictionaries.train import TrainConfig, train_saes
        res = train_saes(ActivationStore({str(store.dir)!r}), TrainConfig({HOOK!r}, ratios=(2.0,), alphas=(1e-3,),
                         batch_size=8, epochs=4, checkpoint_every=1), progress=False)
        print(hashlib.sha256(res.saes[2.0].weight.detach().numpy().tobytes()).hexdigest())
    """)
    env = {**os.environ, "SAELIB_ARTIFACTS": str(isolated_artifacts), "TQDM_DISABLE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert outs[0][0].split()[-1] == outs[1][0].split()[-1]


def test_training_killed_with_sigkill_resumes_to_the_same_result(store, isolated_artifacts):
    """A real kill -9 (no exception handlers run) mid-training, resampling included: the rerun is bit-identical."""
    import signal
    import time

    reference = train_saes(store, untied(checkpoint_every=2), progress=False)
    expected = {k: v.clone() for k, v in reference.saes[4.0].state_dict().items()}
    import shutil

    shutil.rmtree(reference.directory)
    script = textwrap.dedent(f"""
        from saelib.activations.store import ActivationStore
        from saelib.dictionaries.train import TrainConfig, train_saes
        train_saes(ActivationStore({str(store.dir)!r}), TrainConfig({HOOK!r}, architecture="untied", ratios=(4.0,),
                   alphas=(5.0,), epochs=30, resample=True, batch_size=32, lr=1e-2, checkpoint_every=2),
                   progress=False)
    """)
    env = {**os.environ, "SAELIB_ARTIFACTS": str(isolated_artifacts), "TQDM_DISABLE": "1"}
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    checkpoint = reference.directory / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let it run on a little past its first checkpoints
    assert child.poll() is None, "the child finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (reference.directory / "DONE.json").exists() and checkpoint.exists()
    resumed = train_saes(store, untied(checkpoint_every=2), progress=False)
    assert resumed.resampled == reference.resampled
    for key, value in resumed.saes[4.0].state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)
