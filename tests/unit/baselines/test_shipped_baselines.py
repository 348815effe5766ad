"""Shipped FastICA fits: convergence reported honestly, files checked by sha256, model and width on load."""

import numpy as np
import pytest
import torch

from saelib.baselines.directions import fit_ica_with_convergence
from saelib.baselines.shipped import (
    BaselineIntegrityError,
    fit_release_ica,
    load_shipped_ica,
    shipped_ica_info,
    write_shipped_ica,
)
from saelib.interp.comparison import layer_dictionaries

HOOK = "blocks.0.hook_resid_post"


def _mixed(n=6000, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.laplace(size=(n, d)) ** 3 @ rng.normal(size=(d, d)).T).float()


def test_convergence_statistic_is_below_tol_only_when_fastica_converged():
    x = _mixed()
    done = fit_ica_with_convergence(x, seed=0, max_iter=500, tol=1e-4)
    assert done["converged"] and done["n_iter"] < 500 and done["final_change"] < 1e-4
    cut = fit_ica_with_convergence(x, seed=0, max_iter=2, tol=1e-4)
    assert not cut["converged"] and cut["n_iter"] == 2 and cut["final_change"] > 1e-4


def test_picard_reaches_fastica_fixed_point():
    """Picard-O solves FastICA's objective: it stops on FastICA's rule, and finds the same unmixing (up to order
    and sign) as a converged FastICA on a well-posed mixture."""
    x = _mixed(d=8)
    fast = fit_ica_with_convergence(x, seed=0, max_iter=500, tol=1e-4)
    pic = fit_ica_with_convergence(x, seed=1, max_iter=500, tol=1e-4, solver="picard")
    assert pic["converged"] and pic["final_change"] < 1e-4 and pic["stable_share"] == 1.0
    assert pic["trace"] and pic["trace"][-1][0] == pic["n_iter"] and pic["trace"][-1][1] == pic["final_change"]
    a = torch.nn.functional.normalize(fast["directions"], dim=1)
    b = torch.nn.functional.normalize(pic["directions"], dim=1)
    cos = (a @ b.T).abs()
    assert cos.max(1).values.min() > 0.999 and sorted(cos.argmax(1).tolist()) == list(range(8))
    torch.testing.assert_close(pic["center"], fast["center"], atol=1e-3, rtol=1e-3)
    cut = fit_ica_with_convergence(x, seed=1, max_iter=1, tol=1e-4, solver="picard")
    assert not cut["converged"] and cut["n_iter"] == 1 and cut["final_change"] > 1e-4
    with pytest.raises(ValueError, match="solver must be"):
        fit_ica_with_convergence(x, seed=0, max_iter=5, solver="jade")


def test_shipped_fit_round_trips_and_bad_files_are_named(tiny_store, tmp_path):
    store = tiny_store([HOOK], n=24, length=32)
    tensors, entry = fit_release_ica(
        store, HOOK, rows=512, seed=0, max_iter=200, tol=1e-4, model="tiny", model_sha256="abc"
    )
    info = write_shipped_ica(tensors, entry, out=tmp_path)
    assert [e.hook for e in shipped_ica_info(tmp_path)] == [HOOK] and info.rows == 512
    ica = load_shipped_ica(HOOK, model_sha256="abc", width=tensors["directions"].shape[1], root=tmp_path)
    torch.testing.assert_close(ica.directions, tensors["directions"].half().float())
    torch.testing.assert_close(ica.center, tensors["center"])
    with pytest.raises(BaselineIntegrityError, match="not this model"):
        load_shipped_ica(HOOK, model_sha256="other", root=tmp_path)
    with pytest.raises(BaselineIntegrityError, match="width"):
        load_shipped_ica(HOOK, width=7, root=tmp_path)
    with pytest.raises(KeyError, match="release_baselines.py"):
        load_shipped_ica("blocks.1.hook_resid_post", root=tmp_path)
    path = tmp_path / info.file
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(BaselineIntegrityError, match="sha256"):
        load_shipped_ica(HOOK, root=tmp_path)
    path.unlink()
    with pytest.raises(BaselineIntegrityError, match="missing"):
        load_shipped_ica(HOOK, root=tmp_path)
    with pytest.raises(FileNotFoundError, match="release_baselines.py"):
        shipped_ica_info(tmp_path / "nowhere")


def test_too_few_rows_is_a_clear_error(tiny_store):
    store = tiny_store([HOOK], n=2, length=32)
    with pytest.raises(ValueError, match="fewer than rows"):
        fit_release_ica(store, HOOK, rows=10_000, seed=0, max_iter=10, tol=1e-4, model="tiny", model_sha256="abc")


def test_layer_dictionaries_use_the_shipped_fit(tiny_store, tmp_path):
    from saelib.dictionaries.train import TrainConfig, train_saes

    store = tiny_store([HOOK, "blocks.1.hook_resid_post"], n=24, length=32)
    sae = train_saes(store, TrainConfig(HOOK, ratios=(2.0,), alphas=(1e-2,), batch_size=64), progress=False)
    sae = sae.sae(2.0, 1e-2)
    tensors, entry = fit_release_ica(
        store, HOOK, rows=512, seed=0, max_iter=200, tol=1e-4, model="tiny", model_sha256="abc"
    )
    write_shipped_ica(tensors, entry, out=tmp_path)
    shipped = load_shipped_ica(HOOK, root=tmp_path)
    x = torch.from_numpy(np.asarray(store.activations(HOOK)[:256], np.float32))
    dicts = layer_dictionaries(store, HOOK, sae, {"sae": "t"}, x, fit_rows=256, shipped_ica=shipped)
    both = dicts["ICA top-k"][0]
    torch.testing.assert_close(both.directions[: len(shipped.directions)], shipped.directions)
    assert dicts["ICA (paper)"][1]["shipped"] == shipped.info.file and dicts["ICA (paper)"][1]["rows"] == 512
    with pytest.raises(ValueError, match="not blocks.1"):
        layer_dictionaries(store, "blocks.1.hook_resid_post", sae, {"sae": "t"}, x, fit_rows=256, shipped_ica=shipped)
