"""Training under torchrun (saelib.dictionaries.distributed): two CPU processes over gloo give the dictionaries of a
one-process run. Per-rank configs give the very same artifacts; data-parallel training equals one-process training
on whole batches up to float32 summation order (bounded here), resampling included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from saelib.dictionaries.sae import load_sae
from saelib.dictionaries.train import TrainConfig, train_saes

ROOT = Path(__file__).resolve().parents[3]
HOOKS = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]


def torchrun(args: list[str], tmp_path: Path, nproc: int = 2) -> dict:
    out = tmp_path / f"result-{len(list(tmp_path.glob('result-*')))}.json"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(ROOT / "scripts" / "train_distributed.py"),
        *args,
        "--json",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def weights(directory: str | Path, ratio: float) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in load_sae(Path(directory) / f"ratio{ratio:g}").state_dict().items()}


def _initial(cfg: TrainConfig, store) -> dict[str, torch.Tensor]:
    from saelib.dictionaries.train import _build

    return _build(cfg, store.width(cfg.hook), 2.0, store.config["model"], {}, 1.0).state_dict()


@pytest.fixture()
def store(tiny_store):
    return tiny_store(HOOKS, n=24, length=32)


def test_per_rank_configs_are_the_one_process_artifacts(store, tmp_path):
    result = torchrun(
        [
            "--store",
            str(store.dir),
            "--hooks",
            *HOOKS,
            "--alphas",
            "1e-3",
            "4e-3",
            "--batch-size",
            "64",
            "--mode",
            "per-rank",
        ],
        tmp_path,
    )
    for hook in HOOKS:
        alone = train_saes(store, TrainConfig(hook, alphas=(1e-3, 4e-3), batch_size=64), progress=False)
        assert Path(result[hook]) == alone.directory  # the same cache key: trained once, by one of the ranks
        for k, v in weights(result[hook], 2.0).items():
            torch.testing.assert_close(v, alone.saes[2.0].state_dict()[k], rtol=0, atol=0)


TWO_GPUS = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices (NCCL)")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=TWO_GPUS)])
@pytest.mark.parametrize("architecture", ["tied", "untied"])
def test_data_parallel_equals_one_process_up_to_summation_order(store, tmp_path, architecture, device):
    # batch 63: the two ranks get 32 and 31 rows, so the share weighting matters; untied runs resampling too
    # (untied: a large lambda and learning rate kill features, so resampling has work to do)
    alphas, lr, epochs = ((1e-3, 3e-2), 1e-3, 2) if architecture == "tied" else ((1e-2, 5.0), 1e-2, 8)
    args = [
        "--store",
        str(store.dir),
        "--hooks",
        HOOKS[1],
        "--alphas",
        *map(str, alphas),
        "--batch-size",
        "63",
        "--architecture",
        architecture,
        "--mode",
        "data-parallel",
        "--epochs",
        str(epochs),
        "--lr",
        str(lr),
        "--device",
        device,
    ]
    if architecture == "untied":
        args.append("--resample")
    result = torchrun(args, tmp_path)
    cfg = TrainConfig(
        HOOKS[1],
        architecture=architecture,
        alphas=alphas,
        batch_size=63,
        epochs=epochs,
        lr=lr,
        resample=architecture == "untied",
        device=device,
    )
    alone = train_saes(store, cfg, progress=False)
    assert Path(result[HOOKS[1]]) != alone.directory  # cached apart from the one-process run
    done_alone = json.loads((alone.directory / "DONE.json").read_text())
    done_ranks = json.loads((Path(result[HOOKS[1]]) / "DONE.json").read_text())
    assert done_alone["step"] == done_ranks["step"] >= 20
    if architecture == "untied":  # the schedule ran, and the ranks re-initialised what one process did
        assert len(done_alone["resampled"]["2.0"]) == 4 and sum(done_alone["resampled"]["2.0"]) > 0
        assert done_ranks["resampled"] == done_alone["resampled"] and done_ranks["revival"] == done_alone["revival"]
    for k, v in weights(result[HOOKS[1]], 2.0).items():
        ref = alone.saes[2.0].state_dict()[k]
        # float32 sums in another order: differences of ~1e-7 per step, amplified a little by Adam's division
        torch.testing.assert_close(v, ref, rtol=1e-4, atol=1e-5)
    trained = weights(alone.directory, 2.0)
    assert any((trained[k] - v).abs().max() > 1e-3 for k, v in _initial(cfg, store).items())  # it did train


def test_without_torchrun_there_is_no_group():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    code = "from saelib.dictionaries.distributed import init_from_env; print(init_from_env())"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "None", out.stderr


def test_bad_store_is_refused(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_distributed.py"), "--store", str(tmp_path), "--hooks", HOOKS[0]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "is not an activation store" in out.stderr
