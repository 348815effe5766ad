"""The paper profile's GPU path, tested on the CPU, on the simulated accelerator (conftest's ``device``:
real numbers, a GPU's device errors) and, where one is present, on a CUDA device: the same tests with the device
swapped. Rows held on the device give the batches read from the disk, hence the same
dictionaries; the batched member step (the GPU's) matches one member at a time (the CPU's); harvest, training,
resampling and the metrics run where the model and the SAE are."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import saelib.dictionaries.train as train_mod
from saelib.activations.harvest import harvest
from saelib.dictionaries.metrics import ce_loss_recovered, reconstruction_sums
from saelib.dictionaries.sae import SAEConfig, TiedSAE, UntiedSAE
from saelib.dictionaries.train import TrainConfig, count_batches, row_mask, rows_fit_on_device, train_saes
from saelib.text.corpus import PackedContexts

HOOK = "blocks.1.hook_resid_post"


def contexts(n: int = 24, length: int = 32) -> PackedContexts:
    tokens = np.random.default_rng(0).integers(5, 1000, size=(n, length))
    tokens[:, 9] = 3  # a separator column: masked rows in every block
    return PackedContexts(tokens, np.zeros(n, int), np.arange(n) * length, ("toy",), {"toy": 1.0})


def make_store(model, name: str = "harvest"):
    return harvest(
        model, [HOOK], contexts(), corpus_name="toy", batch_size=8, separator_id=3, name=name, progress=False
    )


def state(result, ratio: float = 2.0) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.saes[ratio].state_dict().items()}


@pytest.mark.parametrize("kw", [{}, {"mask": True}, {"mask": True, "max_rows": 500}])
def test_batch_rows_index_the_batches_read_from_the_disk(tiny_model, kw):
    store = make_store(tiny_model)
    mask = row_mask(store, TrainConfig(HOOK)) if kw.get("mask") else None
    args = {"seed": 5, "block_rows": 64, "buffer_blocks": 3, "max_rows": kw.get("max_rows"), "row_mask": mask}
    read = list(store.batches(HOOK, 37, **args))
    rows = list(store.batch_rows(37, **args))
    full = torch.from_numpy(np.asarray(store.activations(HOOK), dtype=np.float32))
    assert len(read) == len(rows) == count_batches(store, 37, 5, kw.get("max_rows"), mask, 64, 3) > 10
    for x, r in zip(read, rows):
        assert torch.equal(x, full[r])
    used = np.concatenate(rows)
    assert len(np.unique(used)) == len(used)  # every kept row once
    assert len(used) == (int(mask[: kw.get("max_rows")].sum()) if mask is not None else store.n_rows)


def test_rows_on_the_device_are_the_stored_rows(tiny_model, device):
    store = make_store(tiny_model)
    rows = store.rows_on(HOOK, device, max_rows=300, block_rows=128)  # blocks that do not divide 300
    assert rows.dtype == torch.float16 and rows.device.type == device and rows.shape == (300, 64)
    assert torch.equal(rows.cpu(), torch.from_numpy(np.array(store.activations(HOOK)[:300])))


@pytest.mark.parametrize("architecture", ["tied", "untied"])
def test_training_from_rows_on_the_device_gives_the_disk_result(tiny_model, architecture, device):
    store = make_store(tiny_model)
    # untied: a large lambda and learning rate kill features, so resampling (a draw from the rows) has work to do
    alphas, lr = ((1e-3, 3e-2), 1e-3) if architecture == "tied" else ((1e-2, 5.0), 1e-2)
    cfg = TrainConfig(
        HOOK,
        architecture=architecture,
        alphas=alphas,
        lr=lr,
        batch_size=48,
        epochs=8,
        max_rows=700,
        resample=architecture == "untied",
        checkpoint_every=5,
        device=device,
    )
    held = train_saes(store, cfg, progress=False, rows_on_device=True)
    done = json.loads((held.directory / "DONE.json").read_text())
    assert done["rows_on_device"] is True and done["step"] > 20
    if architecture == "untied":
        assert sum(held.resampled[2.0]) > 0
    weights, history = state(held), held.history
    shutil.rmtree(held.directory)
    read = train_saes(store, cfg, progress=False, rows_on_device=False)
    assert json.loads((read.directory / "DONE.json").read_text())["rows_on_device"] is False
    assert read.history == history and read.resampled == held.resampled
    for k, v in state(read).items():
        assert torch.equal(v, weights[k]), k


def test_rows_go_to_a_gpu_only_where_they_fit(tiny_model, monkeypatch):
    store = make_store(tiny_model)
    cpu, gpu = TrainConfig(HOOK), TrainConfig(HOOK, device="cuda", max_rows=500)
    assert not rows_fit_on_device(store, cpu)  # the page cache serves a CPU
    needed = 500 * 64 * 2  # float16 rows of width 64
    for free, fits in ((2 * needed, True), (2 * needed - 1, False)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None, free=free: (free, 10 * free))
        assert rows_fit_on_device(store, gpu) is fits


@pytest.mark.parametrize("architecture", ["tied", "untied"])
def test_the_batched_member_step_matches_one_member_at_a_time(architecture, monkeypatch):
    """The GPU's branch of ``train_step`` (every member in one batched matmul), forced on the CPU."""
    cls = TiedSAE if architecture == "tied" else UntiedSAE
    cfg = SAEConfig(architecture, 24, 60, (1e-3, 1e-2, 1e-1) if architecture == "tied" else (0.1, 1.0, 3.0))
    saes = {False: cls(cfg, seed=3), True: cls(cfg, seed=3)}
    opts = {k: torch.optim.Adam(s.parameters(), lr=1e-2) for k, s in saes.items()}
    gen = torch.Generator().manual_seed(0)
    for step in range(1, 9):
        x = torch.randn(40, 24, generator=gen) * 2
        for at_once in (False, True):
            monkeypatch.setattr(train_mod, "members_at_once", lambda sae, x, at_once=at_once: at_once)
            terms = train_mod.train_step(saes[at_once], opts[at_once], x, step, min(1.0, step / 4))
            assert terms["mse"].shape == (3,) and terms["fired"].shape == (3, 60)
    for (name, p), q in zip(saes[True].named_parameters(), saes[False].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
        assert not torch.equal(p, cls(cfg, seed=3).state_dict()[name])  # trained, not two initialisations


def test_harvest_training_and_metrics_on_the_device_match_the_cpu(tiny_model, tiny_neox_dir, device):
    from saelib.model.loader import load_model

    model = tiny_model if device == "cpu" else load_model(str(tiny_neox_dir), device=device)
    cpu_store, store = make_store(tiny_model), make_store(model, name=f"harvest-{device}")
    np.testing.assert_allclose(store.activations(HOOK), cpu_store.activations(HOOK), rtol=1e-3, atol=1e-3)
    cfg = TrainConfig(HOOK, architecture="untied", alphas=(1e-2, 5.0), lr=1e-2, batch_size=48, epochs=8, resample=True)
    on_cpu = train_saes(cpu_store, cfg, progress=False)
    # on the CPU's store (the same rows): what differs is the device's float32 kernels (a bound; no GPU has run it)
    on_dev = train_saes(cpu_store, TrainConfig(**{**cfg.__dict__, "device": device}), progress=False)
    assert json.loads((on_dev.directory / "DONE.json").read_text())["rows_on_device"] is (device == "cuda")
    assert on_dev.resampled == on_cpu.resampled and sum(on_cpu.resampled[2.0]) > 0
    for k, v in state(on_dev).items():
        torch.testing.assert_close(v, state(on_cpu)[k], rtol=1e-3, atol=1e-4)
    sae, sae_dev = on_cpu.saes[2.0], on_dev.saes[2.0].to(device)
    mask = row_mask(cpu_store, cfg)
    sums, sums_dev = (reconstruction_sums(s, cpu_store, HOOK, row_mask=mask) for s in (sae, sae_dev))
    assert sums_dev.fired.device.type == device
    for a, b in zip(sums.metrics(), sums_dev.metrics()):
        assert abs(a["fvu"] - b["fvu"]) < 0.05 and abs(a["l0"] - b["l0"]) < 2
    tokens = torch.from_numpy(cpu_store.tokens[:6].copy())
    mean = torch.from_numpy(np.asarray(cpu_store.activations(HOOK), dtype=np.float32).mean(0))
    ce = ce_loss_recovered(tiny_model, sae, HOOK, tokens, separator_id=3, mean_activation=mean)
    ce_dev = ce_loss_recovered(model, sae, HOOK, tokens, separator_id=3, mean_activation=mean)  # SAE on the CPU
    for a, b in zip(ce, ce_dev):
        assert set(a) == set(b) and all(abs(a[k] - b[k]) < 1e-3 * max(1.0, abs(a[k])) for k in a)
