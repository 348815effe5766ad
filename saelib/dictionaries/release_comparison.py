"""Release runs that let the notebooks decide the papers' claims: today's architectures beside the paper's at matched
L0, a width ladder, seeds, and the MLP layer whose ablation costs the most.

``comparison_plan`` lists them in the order they are trained; ``scripts/release_dictionaries.py --plan comparison``
runs them through the same stages as ``release_plan`` (harvest, training, held-out evaluation, export). The tied
ReLU-L1 runs are calibrated: a pilot sweep on the first eighth of the store (``PILOT_ROWS``) gives held-out L0
against α, and the final run trains the α that ``matched_l0.calibrated_alphas`` interpolates for each target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from saelib.core.artifacts import read_json
from saelib.dictionaries.manifest import Manifest
from saelib.dictionaries.release import DICTIONARIES_DIR, RELEASE_PRECISION, ReleaseRun, _schedule
from saelib.model.hooks import layer_of, mlp_post, resid_post
from saelib.dictionaries.train import TrainConfig

COMPARISON_LAYERS = (8, 14, 20, 26)
COMPARISON_RATIO = 8.0  # 4,608 latents at d = 576
TARGET_L0 = (16.0, 32.0, 64.0)
NEW_ARCHITECTURES = ("topk", "batchtopk", "jumprelu")
PILOT_ALPHAS = tuple(float(10 ** (-3.5 + 0.25 * i)) for i in range(9))  # 3.2e-4 ... 3.2e-2 (tied convention)
PILOT_ROWS = 262_144
PILOT_EVAL_ROWS = 65_536  # the pilot's L0s and FVUs are read on this many held-out rows, dead/dense on as many
# training rows: it calibrates alphas, and 9 members of 4,608 latents over the full stores cost about 25 minutes
LADDER_LAYER = 14
LADDER_RATIOS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # 576 ... 18,432 latents
LADDER_L0 = 32.0
SEEDS = (1, 2)  # beside seed 0: three seeds of the R = 8 dictionary and of the paper's tied R = 2 one
DEAD_AFTER_TOKENS = 262_144  # AuxK's dead window: an eighth of the store (512 steps at batch 512)
SHIP_L0 = 32.0  # the one member of a comparison run that ships weights (the rest: metrics in the manifest)
SHIP_TOPK_LAYERS = (20, 26)  # beside the ladder layer, TopK ships at the IOI layers (notebook 03)


def _new_architecture(
    hook: str,
    architecture: str,
    ratios: tuple[float, ...],
    targets: tuple[float, ...],
    device: str,
    precision: str,
    seed: int = 0,
) -> TrainConfig:
    schedule = _schedule(device, precision) | {"l1_warmup_fraction": 0.0}  # no L1 term to warm up
    return TrainConfig(
        hook,
        architecture=architecture,
        ratios=ratios,
        alphas=targets,
        seed=seed,
        dead_after_tokens=DEAD_AFTER_TOKENS,
        **schedule,
    )


def pilot_run(layer: int, device: str = "cpu", precision: str = RELEASE_PRECISION) -> ReleaseRun:
    """The tied ReLU-L1 pilot at R = 8 whose held-out L0s calibrate the final run's alphas (metrics only)."""
    cfg = TrainConfig(
        resid_post(layer),
        ratios=(COMPARISON_RATIO,),
        alphas=PILOT_ALPHAS,
        max_rows=PILOT_ROWS,
        **_schedule(device, precision),
    )
    return ReleaseRun(f"resid{layer}-tied-r8-pilot", cfg, metrics_only=True)


def calibrated_run(pilot: ReleaseRun, alphas: list[float]) -> ReleaseRun:
    """The final tied run at R = 8: the pilot's config on the whole store with the calibrated ``alphas``."""
    cfg = replace(pilot.train, alphas=tuple(float(a) for a in alphas), max_rows=None)
    layer = layer_of(cfg.hook)
    return ReleaseRun(pilot.name.removesuffix("-pilot"), cfg, metrics_only=layer != LADDER_LAYER, ship_l0=SHIP_L0)


def comparison_plan(device: str = "cpu", precision: str = RELEASE_PRECISION) -> list[ReleaseRun]:
    """The matched-L0 comparison (every layer: the tied pilot, then TopK, BatchTopK, JumpReLU at ``TARGET_L0``),
    the width ladder at ``LADDER_LAYER`` (TopK at L0 32; R = 8 is the comparison's run), the seeds, and the MLP runs
    at ``mlp_layer`` (Bricken et al.'s untied SAE with resampling, and TopK at R = 8).

    What ships weights (under the 200 MB cap, beside the papers' release): the member nearest L0 ``SHIP_L0`` of
    every architecture at ``LADDER_LAYER``, of TopK at ``SHIP_TOPK_LAYERS``, and the seeds; the pilots, the ladder,
    the other layers and the MLP runs (12,288 latents a member) are metrics only."""
    runs = []
    for layer in COMPARISON_LAYERS:
        runs.append(pilot_run(layer, device, precision))
        for arch in NEW_ARCHITECTURES:
            cfg = _new_architecture(resid_post(layer), arch, (COMPARISON_RATIO,), TARGET_L0, device, precision)
            ships = layer == LADDER_LAYER or arch == "topk" and layer in SHIP_TOPK_LAYERS
            runs.append(ReleaseRun(f"resid{layer}-{arch}-r8", cfg, metrics_only=not ships, ship_l0=SHIP_L0))
    ladder = tuple(r for r in LADDER_RATIOS if r != COMPARISON_RATIO)
    runs.append(
        ReleaseRun(
            f"resid{LADDER_LAYER}-topk-ladder",
            _new_architecture(resid_post(LADDER_LAYER), "topk", ladder, (LADDER_L0,), device, precision),
            metrics_only=True,
            sweep_curve=True,
        )
    )  # the convergence curves: does the widest dictionary plateau?
    for seed in SEEDS:
        runs.append(
            ReleaseRun(
                f"resid{LADDER_LAYER}-topk-r8-seed{seed}",
                _new_architecture(
                    resid_post(LADDER_LAYER), "topk", (COMPARISON_RATIO,), (LADDER_L0,), device, precision, seed
                ),
            )
        )
        tied = TrainConfig(
            resid_post(LADDER_LAYER), ratios=(2.0,), alphas=(8.6e-4,), seed=seed, **_schedule(device, precision)
        )
        runs.append(ReleaseRun(f"resid{LADDER_LAYER}-tied-r2-seed{seed}", tied))
    return runs + mlp_runs(mlp_comparison_layer(), device, precision)


def mlp_comparison_layer(path: Path = DICTIONARIES_DIR / "mlp_ablation.json") -> int:
    """The MLP layer whose mean ablation costs the most, as measured by ``scripts/measure_mlp_ablation.py``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run .venv/bin/python scripts/measure_mlp_ablation.py first")
    return layer_of(read_json(path)["most_costly_mean_ablation"])


def mlp_runs(layer: int, device: str = "cpu", precision: str = RELEASE_PRECISION) -> list[ReleaseRun]:
    untied = TrainConfig(
        mlp_post(layer),
        architecture="untied",
        ratios=(COMPARISON_RATIO,),
        alphas=(1.0, 3.3),
        resample=True,
        **_schedule(device, precision),
    )
    topk = _new_architecture(mlp_post(layer), "topk", (COMPARISON_RATIO,), TARGET_L0, device, precision)
    return [
        ReleaseRun(f"mlp{layer}-untied-r8", untied, metrics_only=True),
        ReleaseRun(f"mlp{layer}-topk-r8", topk, metrics_only=True),
    ]


# --- Reading the comparison back from a manifest --------------------------------------------------------------------


def comparison_run_names() -> set[str]:
    """Every run name the comparison plan can export (the calibrated tied runs included)."""
    names = {r.name for r in comparison_plan()}
    return names | {n.removesuffix("-pilot") for n in names}


def papers_only(manifest: Manifest) -> Manifest:
    """``manifest`` without the comparison's runs: the papers' release, as notebook 01's release report reads it."""
    return manifest.without_runs(comparison_run_names())


@dataclass(frozen=True)
class MatchedL0Row:
    """One architecture at one target L0 and layer: the member whose held-out L0 is nearest the target."""

    layer: int
    architecture: str
    target_l0: float
    member: str  # run and setting, e.g. resid14-topk-r8 k=32
    l0: float  # held-out L0 of that member
    matched: bool  # within ±10% of the target (matched_l0.L0_TOLERANCE)
    fvu: float  # Σ‖x − x̂‖² / Σ‖x − x̄‖² on held-out tokens, massive-activation rows excluded
    ce_recovered: float  # (CE_zero − CE_sae) / (CE_zero − CE_clean)
    ce_recovered_mean: float  # the same against mean ablation
    kl_recovered: float  # 1 − KL_sae / KL_zero (NaN where the run predates the KL columns)
    kl_recovered_mean: float  # 1 − KL_sae / KL_mean
    dead_fraction: float  # latents that never fired over ``dead_tokens`` training tokens
    dense_fraction: float  # latents firing on more than 10% of those tokens


def matched_l0_table(manifest: Manifest, targets: tuple[float, ...] = TARGET_L0) -> list[MatchedL0Row]:
    """For each layer and architecture of the comparison at R = 8 (tied ReLU-L1 calibrated, TopK, BatchTopK,
    JumpReLU) that the manifest holds, the member nearest each target L0; runs not yet trained are absent."""
    from saelib.dictionaries.matched_l0 import l0_distance, within

    out = []
    for layer in COMPARISON_LAYERS:
        for arch in ("tied", *NEW_ARCHITECTURES):
            run = f"resid{layer}-{arch}-r8"
            rows = manifest.sweep_of(run)
            for target in targets if rows else ():
                r = min(rows, key=lambda r: l0_distance(r.metrics.l0, target))
                setting = (
                    f"alpha={r.alpha:.3g}"
                    if arch == "tied"
                    else f"k={r.alpha:g}"
                    if arch in ("topk", "batchtopk")
                    else f"target L0={r.alpha:g}"
                )
                m = r.metrics
                out.append(
                    MatchedL0Row(
                        layer,
                        arch,
                        target,
                        f"{run} {setting}",
                        m.l0,
                        within(m.l0, target),
                        m.fvu,
                        m.ce_recovered,
                        _or_nan(m.ce_recovered_mean),
                        _or_nan(m.kl_recovered),
                        _or_nan(r.json.get("kl_recovered_mean")),
                        m.dead_fraction,
                        m.dense_fraction,
                    )
                )
    return out


def _or_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True)
class LadderRow:
    """One width of the TopK ladder at ``LADDER_LAYER`` and L0 ``LADDER_L0``."""

    ratio: float
    d_sae: int
    l0: float
    fvu: float
    ce_recovered: float
    dead_fraction: float
    curve: list[dict]  # training curve: activations seen, FVU on unseen batches


def ladder_table(manifest: Manifest) -> list[LadderRow]:
    """The ladder's widths that the manifest holds, R = 8 taken from the comparison's TopK run at k = 32."""
    rows = [
        (r.ratio, r.metrics, r.json.get("curve", [])) for r in manifest.sweep_of(f"resid{LADDER_LAYER}-topk-ladder")
    ]
    rows += [
        (e.ratio, e.metrics, e.json.get("curve", []))
        for e in manifest.find(run=f"resid{LADDER_LAYER}-topk-r8")
        if e.alpha == LADDER_L0
    ]
    d = next((e.d_in for e in manifest.dictionaries if e.hook == resid_post(LADDER_LAYER)), 576)
    return sorted(
        (
            LadderRow(ratio, round(ratio * d), m.l0, m.fvu, m.ce_recovered, m.dead_fraction, curve)
            for ratio, m, curve in rows
        ),
        key=lambda r: r.ratio,
    )
