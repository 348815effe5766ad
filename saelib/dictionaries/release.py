"""The release tier: dictionaries trained well enough to test the papers' claims, shipped in ``dictionaries/``.

``python scripts/release_dictionaries.py`` runs every stage; each is cached by its config and resumes after a kill:
harvest (2,097,152 training activations per hook, 16x the default profile) -> held-out harvest -> data-hygiene
report -> training (SAELens's and dictionary_learning's schedule: warm-up, decay, L1 warm-up; massive-activation rows excluded; Bricken et
al.'s resampling for the MLP SAE) -> held-out evaluation -> export in SAELens's format with a manifest.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saelib.activations.store import ActivationStore
from saelib.core.artifacts import atomic_write_json, config_hash, file_sha256, folder_lock, read_json, to_jsonable
from saelib.core.paths import REPO_ROOT, artifacts_dir
from saelib.core.profiles import PROFILES, Profile, SAESweep
from saelib.dictionaries.matched_l0 import l0_distance
from saelib.dictionaries.metrics import (
    ce_loss_recovered,
    max_cosines,
    mmcs,
    reconstruction_metrics,
    reconstruction_sums,
)
from saelib.dictionaries.manifest import Manifest
from saelib.dictionaries.shipped import choose
from saelib.dictionaries.train import OUTLIER_NORM_RATIO, TrainConfig, TrainResult, row_mask, row_norms
from saelib.model.hooks import layer_of, mlp_post, resid_post
from saelib.model.loader import model_device

RESID_LAYERS = (2, 8, 14, 20, 26)  # the residual layers every notebook uses
IOI_LAYERS = (20, 26)  # the layers notebook 03's position scan picks for IOI patching
MLP_LAYER = 14  # Bricken et al.'s untied SAE on MLP hidden activations
PAPER_ALPHAS = tuple(float(10 ** (-4 + 2 * k / 15)) for k in range(16))  # logspace(-4, -2, 16), IOI and Fig. 2
DICTIONARIES_DIR = REPO_ROOT / "dictionaries"
STAGING_PREFIX = ".export-"  # an export's temporary folder in the release folder (a killed export's: removed next time)
MMCS_ALPHA = PAPER_ALPHAS[7]  # 8.6e-4: in both the R = 2 (Fig. 2) and the R = 4 (IOI) grids
MIN_CE_RECOVERED = 0.9  # the chosen member of a run recovers at least 90% of the CE loss (else the best one)
# resampling, shown as a controlled pair (metrics only): the MLP SAE at the release's penalties but 5x its learning
# rate, where features go silent within a few hundred steps (exploratory runs: none at 1e-3; at 1e-2 57% by step 68
# and the code collapsed), trained with and without resampling on the same rows in the same order
RESAMPLING_LR = 5e-3
RESAMPLING_ROWS = 262_144  # the first eighth of the store: 512 Adam steps, resamples at steps 68, 136, 204, 272
# the training store's forward passes and every training step run their matmuls in bfloat16 (float32 weights and
# Adam) where the machine runs bfloat16 natively: 2.7x and 1.6-2.3x faster there, what brings the release within
# about 3 hours; where it only emulates bfloat16 (AVX2-only CPUs: ~75x slower) the script falls back to float32
# (core.precision.pick_precision, measured at start). The held-out store and every evaluation stay float32, so the
# manifest's metrics are those of the dictionaries on the activations a float32 model gives a user
RELEASE_PRECISION = "bfloat16"


def release_profile(name: str = "release") -> Profile:
    """``release``: the default profile's context and corpus, 16x its training activations and held-out rows (2
    CPU cores, about 3 hours). ``paper``: the paper's budget (10 x 2,097,152 activations per hook) on a GPU."""
    default = PROFILES["default"]
    if name == "release":
        return replace(
            default,
            name="release",
            harvest_tokens=2_097_152,
            harvest_batch_size=8,
            sae=replace(_sweep(default), eval_rows=262_144),
        )
    if name == "paper":
        paper = PROFILES["paper"]
        return replace(paper, sae=replace(_sweep(paper), eval_rows=1_048_576))
    raise ValueError(f"release profile must be 'release' or 'paper', got {name!r}")


def _sweep(profile: Profile) -> SAESweep:
    """``profile.sae``, which the release profiles build on."""
    if profile.sae is None:
        raise ValueError(f"profile {profile.name!r} has no SAE sweep (sae=None)")
    return profile.sae


def release_hooks() -> list[str]:
    return [resid_post(layer) for layer in RESID_LAYERS] + [mlp_post(MLP_LAYER)]


@dataclass(frozen=True)
class ReleaseRun:
    """One ensemble of the release sweep."""

    name: str  # e.g. resid14-tied-r2: the prefix of every exported member's folder name
    train: TrainConfig
    metrics_only: bool = False  # evaluated into the manifest's sweep, no weights shipped (the 200 MB cap)
    ship_l0: float | None = None  # ship only the member whose held-out L0 is nearest this (the comparison runs)
    sweep_curve: bool = False  # keep each member's training curve in the manifest's sweep (no weights ship)


def _schedule(device: str = "cpu", precision: str = RELEASE_PRECISION, **kw) -> dict:
    """The training recipe shared by every release run: one epoch, Adam at 1e-3 with 2% warm-up and a linear decay
    over the last 20%, L1 warm-up over 5% (SAELens, dictionary_learning), robust input scale, outliers excluded,
    bfloat16 matmuls unless ``precision`` says otherwise."""
    return dict(
        batch_size=512,
        lr=1e-3,
        epochs=1,
        lr_warmup_fraction=0.02,
        lr_decay_fraction=0.2,
        l1_warmup_fraction=0.05,
        outlier_norm_ratio=OUTLIER_NORM_RATIO,
        robust_scale=True,
        checkpoint_every=256,
        device=device,
        precision=precision,
        **kw,
    )


def release_plan(device: str = "cpu", precision: str = RELEASE_PRECISION) -> list[ReleaseRun]:
    """Every ensemble, in the order they are trained (what later notebooks need most comes first); ``precision``:
    the matmul precision of every training step (``core.precision``; the script picks it per machine)."""
    fig2 = (MMCS_ALPHA, 2.15e-3, 4.64e-3)  # the paper's Fig. 2 alpha (8.6e-4), then sparser ones
    ioi = (0.0, PAPER_ALPHAS[3], PAPER_ALPHAS[5], MMCS_ALPHA)  # alpha = 0 control and the paper's grid <= 1e-3
    runs = [
        ReleaseRun(
            f"resid{layer}-tied-r2",
            TrainConfig(resid_post(layer), ratios=(2.0,), alphas=fig2, **_schedule(device, precision)),
        )
        for layer in RESID_LAYERS
    ]
    runs += [
        ReleaseRun(
            f"resid{layer}-tied-r4",
            TrainConfig(
                resid_post(layer), ratios=(4.0,), alphas=ioi, allow_zero_alpha=True, **_schedule(device, precision)
            ),
            metrics_only=layer not in IOI_LAYERS,
        )  # only the IOI layers' sweeps are patched
        for layer in (*IOI_LAYERS, *(la for la in reversed(RESID_LAYERS) if la not in IOI_LAYERS))
    ]
    mlp = TrainConfig(
        mlp_post(MLP_LAYER),
        architecture="untied",
        ratios=(2.0,),
        alphas=(1.0, 3.3),
        resample=True,
        **_schedule(device, precision),
    )
    runs.append(ReleaseRun(f"mlp{MLP_LAYER}-untied-r2", mlp))
    # at the release's learning rate no feature dies within its budget, so resampling never acts there; the pair
    # below makes features die (a higher learning rate) and measures what resampling changes, everything else equal
    stressed = replace(mlp, lr=RESAMPLING_LR, max_rows=RESAMPLING_ROWS)
    runs.append(ReleaseRun(f"mlp{MLP_LAYER}-untied-r2-resampling", stressed, metrics_only=True))
    runs.append(
        ReleaseRun(f"mlp{MLP_LAYER}-untied-r2-no-resampling", replace(stressed, resample=False), metrics_only=True)
    )
    return runs


def harvest_hooks(plan: list[ReleaseRun], planned_only: bool = False) -> list[str]:
    """The release hooks one store holds for ``plan``: all of them up to the deepest layer the plan trains on (a
    pass through the deepest layer costs the same for one hook or several, so any run of the plan reads it), or with
    ``planned_only`` only those the plan trains on (disk: the paper profile stores 24 GB per residual hook)."""
    planned = {r.train.hook for r in plan}
    extra = sorted(planned - set(release_hooks()))  # e.g. the comparison's MLP layer
    if planned_only:
        return [h for h in release_hooks() if h in planned] + extra
    deepest = max(layer_of(r.train.hook) for r in plan)
    return [h for h in release_hooks() if layer_of(h) <= deepest] + extra


def hygiene_report(store: ActivationStore, hooks: list[str], ratio: float = OUTLIER_NORM_RATIO) -> list[dict]:
    """Per hook: how much of Σ‖x‖² the top 0.1% and 1% of rows hold (position 0 and separators already excluded),
    and how many rows the outlier rule removes and how much of Σ‖x‖² they held."""
    rows = []
    for hook in hooks:
        base = row_mask(store, TrainConfig(hook))
        norms = row_norms(store, hook)[base].astype(np.float64)
        sq = np.sort(norms**2)[::-1]
        median = float(np.median(norms))
        out = norms > ratio * median
        rows.append(
            {
                "hook": hook,
                "rows": int(base.sum()),
                "median_norm": median,
                "max_norm": float(norms.max()),
                "share_top_0.1pct": float(sq[: max(1, len(sq) // 1000)].sum() / sq.sum()),
                "share_top_1pct": float(sq[: max(1, len(sq) // 100)].sum() / sq.sum()),
                "outlier_rows": int(out.sum()),
                "outlier_fraction": float(out.mean()),
                "outlier_share_of_sq_norm": float((norms[out] ** 2).sum() / sq.sum()),
            }
        )
    return rows


def mean_activation(store: ActivationStore, hook: str, mask: np.ndarray, n: int = 65_536) -> torch.Tensor:
    """Mean training activation of ``hook`` over (masked) rows: the mean-ablation baseline."""
    return next(store.batches(hook, n, seed=54321, row_mask=mask)).mean(0)


def evaluate_run(
    model,
    result: TrainResult,
    run: ReleaseRun,
    train_store: ActivationStore,
    eval_store: ActivationStore,
    ce_tokens: torch.Tensor,
    dead_rows: int = 1_048_576,
    heldout_rows: int | None = None,
) -> list[dict]:
    """Held-out metrics of every member of ``run`` (cached beside the weights in ``release_metrics.json``).

    L0 and pooled FVU on the held-out store (outlier rows excluded as in training; FVU with them included is
    reported too); dead and dense over ``dead_rows`` training tokens; CE loss recovered against zero and mean
    ablation and KL on ``ce_tokens`` held-out contexts (outlier rows keep their real activation). ``heldout_rows``:
    only the first that many held-out rows (a pilot sweep that needs L0, not the last digit of FVU)."""
    path = result.directory / "release_metrics.json"
    if path.exists():
        return read_json(path)
    start = time.perf_counter()
    cfg, hook = run.train, run.train.hook
    eval_mask = row_mask(eval_store, cfg)
    all_rows = row_mask(eval_store, replace(cfg, outlier_norm_ratio=None))
    if heldout_rows is not None:
        eval_mask, all_rows = eval_mask.copy(), all_rows.copy()
        eval_mask[heldout_rows:] = all_rows[heldout_rows:] = False
    outliers = all_rows & ~eval_mask  # few rows (none at most hooks): FVU with them adds their sums to the rest
    train_mask = row_mask(train_store, cfg)
    max_norm = OUTLIER_NORM_RATIO * float(np.median(row_norms(eval_store, hook)[all_rows]))
    mean = mean_activation(train_store, hook, train_mask)
    sample = next(eval_store.batches(hook, 65_536, seed=0, row_mask=eval_mask))
    rows = []
    device = model_device(model)  # evaluated where the model runs; the result's weights stay on the CPU for export
    for ratio, ensemble in result.saes.items():
        ensemble = copy.deepcopy(ensemble).to(device) if ensemble.device != device else ensemble
        scale = ensemble.cfg.input_scale  # the training log's MSE is per element of scaled activations
        variance = float((sample * scale).var(0).mean())
        held_sums = reconstruction_sums(ensemble, eval_store, hook, row_mask=eval_mask)
        if outliers.any():
            held_sums_all = held_sums + reconstruction_sums(ensemble, eval_store, hook, row_mask=outliers)
        else:
            held_sums_all = held_sums
        held, with_outliers = held_sums.metrics(), held_sums_all.metrics()
        dead = reconstruction_metrics(
            ensemble, train_store, hook, row_mask=train_mask, max_rows=dead_rows, reconstruct=False
        )  # counts need only the codes
        ce = ce_loss_recovered(
            model,
            ensemble,
            hook,
            ce_tokens,
            separator_id=eval_store.config["separator_id"],
            mean_activation=mean,
            max_norm=max_norm,
        )
        for i, alpha in enumerate(ensemble.cfg.alphas):
            rows.append(
                {
                    "run": run.name,
                    "hook": hook,
                    "architecture": cfg.architecture,
                    "ratio": ratio,
                    "alpha": alpha,
                    "l0": held[i]["l0"],
                    "fvu": held[i]["fvu"],
                    "eval_tokens": held[i]["eval_tokens"],
                    "fvu_with_outliers": with_outliers[i]["fvu"],
                    "dead_fraction": dead[i]["dead_fraction"],
                    "dense_fraction": dead[i]["dense_fraction"],
                    "dead_tokens": dead[i]["eval_tokens"],
                    "scaled_variance_per_element": variance,
                    **ce[i],
                }
            )
    for row in rows:  # the run's cost, so a release reports its own stages (per run, not per member)
        row |= {"train_seconds": result.seconds, "eval_seconds": time.perf_counter() - start}
    atomic_write_json(path, rows)
    return rows


def training_curve(result: TrainResult, run: ReleaseRun, row: dict) -> list[dict]:
    """FVU and L0 against activations seen for one member, from the training log: each logged batch is measured
    before the step that trains on it, so every point is on activations the SAE has not seen (progressive
    validation; the documents are from the training split). FVU = the batch's per-element MSE / the held-out
    per-element variance, both on scaled activations."""
    batch = run.train.batch_size
    return [
        {
            "step": h["step"],
            "activations": h["step"] * batch,
            "fvu": h["mse"] / row["scaled_variance_per_element"],
            "l0": h["l0"],
        }
        for h in result.history
        if h["ratio"] == row["ratio"] and h["alpha"] == row["alpha"]
    ]


def member_name(run: ReleaseRun, alpha: float) -> str:
    return _member(run.name, alpha)


def _member(run_name: str, alpha: float) -> str:
    return f"{run_name}-a{alpha:.2e}".replace("+", "").replace(".", "p")


def git_revision() -> str:
    """HEAD of the repository that produced the release ("+dirty" when saelib/ has uncommitted changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "saelib"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def release_dir() -> Path:
    return artifacts_dir() / "release"


def choose_member(rows: list[dict]) -> dict:
    """The dictionary chosen among ``rows`` (one run): ``saelib.dictionaries.shipped.choose``'s rule over its sparse
    members (alpha > 0) with ``MIN_CE_RECOVERED``: the sparsest (largest alpha) whose CE loss recovered against zero
    ablation is at least that; if none reaches it, the one that recovers the most."""
    return choose([r for r in rows if r["alpha"] > 0], min_ce_recovered=MIN_CE_RECOVERED)


def ship_alphas(run: ReleaseRun, rows: list[dict]) -> list[float]:
    """Members of ``run`` shipped in dictionaries/ (what the notebooks read, under 200 MB): every member of the IOI
    sweep (R = 4 at the IOI layers, alpha = 0 control included: notebook 03) and of Bricken et al.'s untied MLP run
    (notebook 06 reads its sparser member, notebook 07 the chosen one), the chosen member elsewhere (notebooks 02,
    04-06), and at the IOI layers the R = 2 member at ``MMCS_ALPHA`` too (notebook 07 compares it with R = 4); the
    rest of the sweep, and every member of a ``metrics_only`` run, is only in the manifest's metrics. A run with
    ``ship_l0`` ships the one member whose held-out L0 is nearest it on a log scale."""
    if run.metrics_only:
        return []
    if run.ship_l0 is not None:
        target = run.ship_l0
        return [min(rows, key=lambda r: l0_distance(r["l0"], target))["alpha"]]
    layer = layer_of(run.train.hook)
    if run.train.architecture == "untied" or run.name.endswith("-r4") and layer in IOI_LAYERS:
        return [r["alpha"] for r in rows]
    chosen = choose_member(rows)["alpha"]
    if layer in IOI_LAYERS and chosen != MMCS_ALPHA and any(r["alpha"] == MMCS_ALPHA for r in rows):
        return sorted([chosen, MMCS_ALPHA])  # R = 2 beside R = 4 at the same alpha: notebook 07's MMCS across ratios
    return [chosen]


def _still_shipped(entry: dict, sweep: list[dict]) -> bool:
    """Whether an entry of an earlier export is shipped under today's rule (its run's metrics are in ``sweep``)."""
    rows = [r for r in sweep if r["run"] == entry["run"]]
    run = ReleaseRun(
        entry["run"], TrainConfig(entry["hook"], architecture=entry["architecture"]), ship_l0=entry.get("ship_l0")
    )
    return not rows or entry["alpha"] in ship_alphas(run, rows)


def export_release(
    done: list[tuple[ReleaseRun, TrainResult, list[dict]]],
    hygiene: list[dict],
    train_store: ActivationStore,
    eval_store: ActivationStore,
    model_sha256: str,
    out: Path = DICTIONARIES_DIR,
    dtype: str = "float16",
    max_bytes: int = 200 * 2**20,
) -> Path:
    """Write the shipped members of ``done`` in SAELens's format and merge them into ``manifest.json`` (sha256 of
    each file, training config, data budget and stores, code revision, held-out metrics of the whole sweep).

    Runs not in ``done`` keep their entries, files and metrics, so a release can be built a few runs at a time
    (each from its own store); a re-exported run replaces its old entries. A manifest for another model is an
    error, never overwritten. Stops before writing anything if the merged release is over ``max_bytes``.

    Each new member is written whole into a temporary folder inside ``out``, then switched in by renames; the
    manifest is written atomically last, and only when something in it changed (a member whose files are unchanged
    keeps its folder and its entry's code revision). The only folders removed are members the previous manifest
    listed and this one does not; folders it never listed (a user's own SAE) are left alone, and a member folder
    that is a symbolic link is never written through or emptied (an error, before anything is written)."""
    from saelib.core.artifacts import as_json
    from saelib.core.revision import code_revision
    from saelib.dictionaries.sae.saelens_format import CONFIG, DTYPES, WEIGHTS, export_saelens
    from saelib.dictionaries.shipped import plain_name

    old = _existing_manifest(out, train_store.config["model"], model_sha256)
    old_entries = {
        plain_name(e["name"], f"{out / 'manifest.json'}: dictionary name"): e for e in old.get("dictionaries", [])
    }
    runs = {run.name for run, _, _ in done}
    kept = [
        e for e in old_entries.values() if e["run"] not in runs and _still_shipped(e, old.get("sweep", []))
    ]  # files of members no longer shipped are removed below
    planned = [(run, res, row) for run, res, rows in done for row in rows if row["alpha"] in ship_alphas(run, rows)]
    names = [plain_name(member_name(run, row["alpha"])) for run, _, row in planned]
    stale = sorted(set(old_entries) - {e["name"] for e in kept} - set(names))
    _refuse_links(out, names + stale)
    itemsize = torch.finfo(DTYPES[dtype]).bits // 8
    size = sum(
        2 * res.saes[row["ratio"]].cfg.n_features * res.saes[row["ratio"]].cfg.d_in * itemsize
        for _, res, row in planned
    )  # W_enc and W_dec; the biases are negligible
    size += sum((out / e["name"] / WEIGHTS).stat().st_size for e in kept if (out / e["name"] / WEIGHTS).exists())
    size += sum(f.stat().st_size for f in (out / "baselines").glob("*") if f.is_file())  # shipped ICA fits
    if size > max_bytes:
        raise ValueError(
            f"the planned release is {size / 2**20:.0f} MiB, over {max_bytes / 2**20:.0f} MiB: ship fewer "
            "members (saelib.dictionaries.release.ship_alphas) or store float16"
        )
    out.mkdir(parents=True, exist_ok=True)
    stores = {
        "train_store": train_store.dir.name,
        "train_tokens": train_store.n_rows,
        "train_precision": train_store.config.get("precision", "float32"),
        "heldout_store": eval_store.dir.name,
        "heldout_tokens": eval_store.n_rows,
        "heldout_precision": eval_store.config.get("precision", "float32"),
        "context_length": train_store.context_length,
        "corpus": train_store.config["corpus"],
    }
    code = {
        "git_revision": git_revision(),
        "saes_code_revision": code_revision("saes"),
        "activations_code_revision": code_revision("activations"),
    }
    with folder_lock(artifacts_dir() / "locks" / f"release-export-{config_hash(str(out.resolve()))}"):
        _remove_staging(out)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
        try:
            entries, changed = [], []
            for (run, res, row), name in zip(planned, names):
                ensemble = res.saes[row["ratio"]]
                member = ensemble.member(list(ensemble.cfg.alphas).index(row["alpha"]))
                paths = export_saelens(
                    member, staging / name, member.cfg.model, dtype=dtype, extra_metadata={"saelib_release_name": name}
                )
                sha = {f: file_sha256(Path(paths[f])) for f in (CONFIG, WEIGHTS)}
                previous = old_entries.get(name)
                unchanged = previous is not None and previous.get("sha256") == sha and _holds(out / name, sha)
                if not unchanged:
                    changed.append(name)
                entries.append(
                    {
                        "name": name,
                        "run": run.name,
                        "hook": row["hook"],
                        "architecture": run.train.architecture,
                        "ratio": row["ratio"],
                        "alpha": row["alpha"],
                        "d_in": member.cfg.d_in,
                        "d_sae": member.cfg.n_features,
                        "storage_dtype": dtype,
                        "sha256": sha,
                        "input_scale_folded": member.cfg.input_scale,
                        "metrics": row,
                        "train_config": as_json(run.train),
                        "train_rows": member.cfg.extra.get("train_rows"),
                        "steps": member.cfg.extra.get("steps"),
                        "resampled": res.resampled.get(row["ratio"]),
                        "revival": _member_revival(res, row),
                        "data": stores,
                        # the code that wrote its files (unchanged: previous is not None)
                        "code": previous["code"] if previous is not None and unchanged else code,
                        "curve": training_curve(res, run, row),
                        **({"ship_l0": run.ship_l0} if run.ship_l0 is not None else {}),
                    }
                )
            manifest = _merged_manifest(
                old, done, kept, entries, hygiene, runs, train_store, stores, code, model_sha256
            )
            if not changed and not stale and old and _same_release(manifest, old):
                return out / "manifest.json"  # nothing changed: the manifest keeps its bytes and git revision
            (staging / ".previous").mkdir()
            for name in changed:  # the previous folder moves into the staging folder, removed with it below
                if (out / name).exists():
                    os.replace(out / name, staging / ".previous" / name)
                os.replace(staging / name, out / name)
            atomic_write_json(out / "manifest.json", manifest)
            for name in stale:  # members of the previous release that this one no longer ships
                if (out / name).is_dir() and not (out / name).is_symlink():
                    shutil.rmtree(out / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out / "manifest.json"


def _merged_manifest(
    old: dict,
    done: list[tuple[ReleaseRun, TrainResult, list[dict]]],
    kept: list[dict],
    entries: list[dict],
    hygiene: list[dict],
    runs: set[str],
    train_store: ActivationStore,
    stores: dict,
    code: dict,
    model_sha256: str,
) -> dict:
    """The previous manifest ``old`` with the runs of ``done`` (their shipped ``entries``) merged in."""
    chosen = dict(old.get("chosen", {}))
    for run, _, rows in done:
        if not run.metrics_only and (run.name.endswith("tied-r2") or run.train.architecture == "untied"):
            chosen[run.train.hook] = member_name(run, choose_member(rows)["alpha"])
    # per hook and store: the comparison's store of a hook is not the papers' (rows without one: the first export's)
    first_store = old.get("data", stores)["train_store"]
    hygiene = [{**row, "store": train_store.dir.name} for row in hygiene]
    new_hygiene = {(row["hook"], row["store"]) for row in hygiene}
    return {
        "description": "Release dictionaries of saelib (regenerate: .venv/bin/python scripts/release_dictionaries.py)",
        "format": "SAELens (cfg.json + sae_weights.safetensors); input scaling folded into the weights",
        "model": {"name": train_store.config["model"], "weights_sha256": model_sha256},
        "code": code,
        "data": old.get("data", stores),  # the first export's (residual) stores; each entry names its own
        "hygiene": {
            "rule": f"exclude rows with norm > {OUTLIER_NORM_RATIO:g} x the layer's median norm (besides "
            "position 0 and document separators); scale inputs by the median norm",
            "per_hook": sorted(
                [
                    h
                    for h in old.get("hygiene", {}).get("per_hook", [])
                    if (h["hook"], h.get("store", first_store)) not in new_hygiene
                ]
                + hygiene,
                key=lambda h: _hook_order(h["hook"]),
            ),
        },
        "chosen": dict(sorted(chosen.items(), key=lambda kv: _hook_order(kv[0]))),
        "dictionaries": sorted(kept + entries, key=lambda e: (_run_order(e["run"]), e["alpha"])),
        "sweep": sorted(
            [r for r in old.get("sweep", []) if r["run"] not in runs]
            + [_sweep_row(run, res, row, train_store) for run, res, rows in done for row in rows],
            key=lambda r: (_run_order(r["run"]), r["alpha"]),
        ),
        # rows of runs re-exported here are stale: the script recomputes them once both runs are trained
        "mmcs": [r for r in old.get("mmcs", []) if r["small_run"] not in runs and r["large_run"] not in runs],
    }


def _same_release(manifest: dict, old: dict) -> bool:
    """Whether ``manifest`` says what ``old`` says, the code revision of the export aside."""

    def text(m: dict) -> str:
        return json.dumps(to_jsonable({**m, "code": None}), sort_keys=True)

    return text(manifest) == text(old)


def _holds(folder: Path, sha: dict[str, str]) -> bool:
    """Whether ``folder`` (a real folder, not a link) holds exactly the files of ``sha`` with those hashes."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    files = {p.name for p in folder.iterdir()}
    return files == set(sha) and all(file_sha256(folder / f) == h for f, h in sha.items())


def _refuse_links(out: Path, names: list[str]) -> None:
    """An error, before anything is written, if a member folder the export writes or removes is a symbolic link."""
    links = [name for name in names if (out / name).is_symlink()]
    if links:
        raise ValueError(
            f"{', '.join(str(out / n) for n in links)}: a member folder of the release is a symbolic "
            "link; the export never writes through or removes a link. Remove the link (`rm "
            f"{out / links[0]}` removes the link only, not what it points to) or export to another "
            "folder (out=...): nothing was written"
        )


def _remove_staging(out: Path) -> None:
    """Remove the temporary folders that a killed export left in ``out`` (never following a link)."""
    for folder in out.glob(f"{STAGING_PREFIX}*"):
        if folder.is_symlink():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder)


def _sweep_row(run: ReleaseRun, result: TrainResult, row: dict, train_store: ActivationStore) -> dict:
    """A member's held-out metrics plus what the sweep table needs when no weights ship: its store, training rows
    and, where the run resamples, the member's resampling counts (and the ensemble's per resample point); with
    ``run.sweep_curve`` its training curve (``training_curve``)."""
    ensemble = result.saes[row["ratio"]]
    member = ensemble.member(list(ensemble.cfg.alphas).index(row["alpha"]))
    extra = {"train_store": train_store.dir.name, "train_rows": member.cfg.extra.get("train_rows")}
    if run.train.resample:
        extra |= {"revival": _member_revival(result, row), "resampled": result.resampled.get(row["ratio"])}
    if run.train.architecture == "untied" and result.silent.get(row["ratio"]):
        i = list(ensemble.cfg.alphas).index(row["alpha"])  # this member's count at each resample point
        extra["silent_at_resample_points"] = [point[i] for point in result.silent[row["ratio"]]]
    if run.sweep_curve:
        extra["curve"] = training_curve(result, run, row)
    return {**row, **extra}


def _member_revival(result: TrainResult, row: dict) -> dict | None:
    """This member's share of resampling: distinct features re-initialised and how many fired again afterwards."""
    rev = result.revival.get(row["ratio"])
    if not rev:
        return None
    i = list(result.saes[row["ratio"]].cfg.alphas).index(row["alpha"])
    return {k: v[i] for k, v in rev.items()}


# --- MMCS between the R = 2 and R = 4 dictionaries of a layer (Cunningham et al.'s comparison across sizes) ------


def mmcs_across_ratios(small: torch.Tensor, large: torch.Tensor, seed: int = 0) -> dict:
    """MMCS between a layer's smaller dictionary ``small`` [n_small, d] and larger one ``large`` [n_large, d] (rows
    are features), the share of small features with a large partner at cosine >= 0.9, and the random control: MMCS
    between Gaussian directions of the same shapes (what two unrelated dictionaries of these sizes score)."""
    best = max_cosines(small, large)
    gen = torch.Generator().manual_seed(seed)
    return {
        "mmcs_small_to_large": float(best.mean()),
        "mmcs_large_to_small": mmcs(large, small),
        "share_cos_ge_0.9": float((best >= 0.9).float().mean()),
        "random_control": mmcs(torch.randn(*small.shape, generator=gen), torch.randn(*large.shape, generator=gen)),
    }


def ratio_mmcs(
    trained: dict[str, tuple[ReleaseRun, TrainResult]], train_store: str, alpha: float = MMCS_ALPHA
) -> list[dict]:
    """One row per residual layer whose R = 2 and R = 4 tied runs are both in ``trained`` (run name -> run, result):
    MMCS between their members at ``alpha`` (in both grids), both trained on ``train_store``. Needs only the trained
    weights, so it covers the metrics-only R = 4 sweeps below the IOI layers too."""
    rows = []
    for layer in RESID_LAYERS:
        small_pair, large_pair = (trained.get(f"resid{layer}-tied-r{r}") for r in (2, 4))
        if small_pair is None or large_pair is None:
            continue
        if any(alpha not in run.train.alphas for run, _ in (small_pair, large_pair)):
            continue
        (small_run, small), (large_run, large) = small_pair, large_pair
        with torch.no_grad():
            dicts = [
                res.sae(run.train.ratios[0], alpha).dictionary()[0]
                for run, res in ((small_run, small), (large_run, large))
            ]
        rows.append(
            {
                "hook": resid_post(layer),
                "alpha": alpha,
                "small": member_name(small_run, alpha),
                "large": member_name(large_run, alpha),
                "small_run": small_run.name,
                "large_run": large_run.name,
                "train_store": train_store,
                "n_small": len(dicts[0]),
                "n_large": len(dicts[1]),
                "train_rows": [
                    res.saes[run.train.ratios[0]].cfg.extra.get("train_rows")
                    for run, res in ((small_run, small), (large_run, large))
                ],
                **mmcs_across_ratios(dicts[0], dicts[1]),
            }
        )
    return rows


def merge_mmcs(rows: list[dict], model: str, model_sha256: str, out: Path = DICTIONARIES_DIR) -> Path:
    """Add ``rows`` (from ``ratio_mmcs`` on ``model``) to the manifest in ``out``, replacing earlier rows of the same
    hook; a manifest of another model is an error, never written."""
    path = out / "manifest.json"
    manifest = _existing_manifest(out, model, model_sha256)
    if not manifest:
        raise FileNotFoundError(
            f"{path} does not exist: export the release runs first (scripts/release_dictionaries.py)"
        )
    hooks = {r["hook"] for r in rows}
    manifest["mmcs"] = sorted(
        [r for r in manifest.get("mmcs", []) if r["hook"] not in hooks] + rows, key=lambda r: _hook_order(r["hook"])
    )
    atomic_write_json(path, manifest)
    return path


def _existing_manifest(out: Path, model: str, model_sha256: str) -> dict:
    """The manifest already in ``out`` ({} if none); one for another model or model file is an error."""
    path = out / "manifest.json"
    if not path.exists():
        return {}
    old = read_json(path)
    if old.get("model") != {"name": model, "weights_sha256": model_sha256}:
        raise ValueError(
            f"{path} belongs to another model ({old.get('model')}); this release is for {model} "
            f"(weights sha256 {model_sha256[:12]}...). Export to an empty folder (out=...) or move "
            "the old release away first: nothing was written"
        )
    return old


def _hook_order(hook: str) -> tuple[int, str]:
    return layer_of(hook), hook


# --- the release's targets, evaluated on a manifest (notebook 07 shows them) ---------------------------------------


def fvu_at_l0(rows: list[dict], l0: float = 32.0) -> float | None:
    """FVU at ``l0`` by linear interpolation in log L0 along one sweep; None if ``l0`` is outside its L0 range
    (no extrapolation)."""
    pts = sorted((r["l0"], r["fvu"]) for r in rows if r["alpha"] > 0)
    for (l0_a, f_a), (l0_b, f_b) in zip(pts, pts[1:]):
        if l0_a <= l0 <= l0_b:
            t = (np.log(l0) - np.log(l0_a)) / (np.log(l0_b) - np.log(l0_a)) if l0_b > l0_a else 0.0
            return float(f_a + t * (f_b - f_a))
    return None


def monotone(rows: list[dict], key: str, direction: int) -> bool:
    """Whether ``key`` never moves against ``direction`` (+1 non-decreasing, -1 non-increasing) as alpha grows."""
    values = [r[key] for r in sorted(rows, key=lambda r: r["alpha"]) if r["alpha"] > 0]
    return all(direction * (b - a) >= 0 for a, b in zip(values, values[1:]))


def _run_order(name: str) -> tuple[str, str, int]:
    """resid2-tied-r2 < resid8-tied-r2 < ... < resid2-tied-r4 < ... (by kind, then layer)."""
    head, _, kind = name.partition("-")
    return kind, head.rstrip("0123456789"), int(head[len(head.rstrip("0123456789")) :] or 0)


def targets(manifest: Manifest | dict[str, Any]) -> list[dict]:
    """One row per (target, layer): what was asked, what was measured, met or not. ``manifest`` is the typed release
    (``load_manifest``) or its JSON (read through ``Manifest.from_json``)."""
    if not isinstance(manifest, Manifest):
        manifest = Manifest.from_json(manifest)
    sweep = manifest.sweep
    out = []
    for run in sorted({r.run for r in sweep}, key=_run_order):
        rows = [{"alpha": r.alpha, "l0": r.metrics.l0, "fvu": r.metrics.fvu} for r in sweep if r.run == run]
        out.append(
            {
                "target": "FVU non-decreasing in alpha",
                "run": run,
                "measured": " ".join(
                    f"{r['fvu']:.3f}" for r in sorted(rows, key=lambda r: r["alpha"]) if r["alpha"] > 0
                ),
                "met": monotone(rows, "fvu", +1),
            }
        )
        out.append(
            {
                "target": "L0 non-increasing in alpha",
                "run": run,
                "measured": " ".join(
                    f"{r['l0']:.1f}" for r in sorted(rows, key=lambda r: r["alpha"]) if r["alpha"] > 0
                ),
                "met": monotone(rows, "l0", -1),
            }
        )
        if run.startswith("resid") and run.endswith("-tied-r2"):  # a residual layer's Fig. 2 sweep
            layer = _run_order(run)[2]
            limit = 0.20 if layer <= 14 else 0.30
            fvu = fvu_at_l0(rows)
            l0s = sorted(r["l0"] for r in rows)
            out.append(
                {
                    "target": f"FVU at L0 = 32 <= {limit:.2f}",
                    "run": run,
                    "measured": f"{fvu:.3f}"
                    if fvu is not None
                    else f"L0 = 32 outside the sweep's range [{l0s[0]:.1f}, {l0s[-1]:.1f}]",
                    "met": fvu is not None and fvu <= limit,
                }
            )
    # resampling counts are not typed fields: the records keep them in their JSON
    revivals = {
        (e.run, e.alpha): e.json["revival"]
        for e in manifest.dictionaries
        if e.json.get("revival") and e.json["train_config"].get("resample")
    }
    revivals.update({(r.run, r.alpha): r.json["revival"] for r in sweep if r.json.get("revival")})
    for (run, alpha), rev in sorted(revivals.items(), key=lambda kv: (_run_order(kv[0][0]), kv[0][1])):
        out.append(
            {
                "target": "resampling revives dead features (> 0 fire again)",
                "run": _member(run, alpha),
                "measured": f"{rev['fired_after_resample']} of {rev['resampled_features']} re-initialised "
                "features fired again" + (" (none died)" if not rev["resampled_features"] else ""),
                "met": rev["fired_after_resample"] > 0,
            }
        )
    twins = {(r.run, r.alpha): r.metrics for r in sweep if r.run.endswith("-no-resampling")}
    for r in sorted(sweep, key=lambda r: (_run_order(r.run), r.alpha)):
        twin = twins.get((r.run.replace("-resampling", "-no-resampling"), r.alpha))
        if r.run.endswith("-untied-r2-resampling") and twin:  # the controlled pair: only resampling differs
            out.append(
                {
                    "target": "resampling leaves fewer dead features than without",
                    "run": _member(r.run, r.alpha),
                    "measured": f"dead {r.metrics.dead_fraction:.1%} with, {twin.dead_fraction:.1%} without "
                    f"(over {r.metrics.dead_tokens:,} tokens)",
                    "met": r.metrics.dead_fraction < twin.dead_fraction,
                }
            )
    for row in manifest.mmcs:  # "clearly above the random baseline", read as at least twice it
        out.append(
            {
                "target": "MMCS R2 -> R4 >= 2 x random control",
                "run": f"{row['small']} -> {row['large']}",
                "measured": f"{row['mmcs_small_to_large']:.3f} (random {row['random_control']:.3f})",
                "met": row["mmcs_small_to_large"] >= 2 * row["random_control"],
            }
        )
    for hook, name in manifest.chosen.items():
        metrics = manifest.entry(name).metrics
        out.append(
            {
                "target": "chosen: CE loss recovered (zero ablation) >= 0.90",
                "run": name,
                "measured": f"{metrics.ce_recovered:.3f}",
                "met": metrics.ce_recovered >= 0.90,
            }
        )
        out.append(
            {
                "target": "chosen: dead <= 10% over >= 1M tokens",
                "run": name,
                "measured": f"{metrics.dead_fraction:.3f} over {metrics.dead_tokens:,} tokens",
                "met": metrics.dead_fraction <= 0.10 and metrics.dead_tokens >= 1_000_000,
            }
        )
    return out
