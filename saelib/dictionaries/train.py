"""Training sparse autoencoders on a harvested activation store.

One pass over shuffled batches trains every (ratio, alpha) pair of a sweep: members with the same ratio form one
ensemble (batched matmuls, see ``saelib.dictionaries.sae``), and each batch read from disk (or gathered from rows
held on a GPU: the same batches) is fed to every ensemble. Adam, deterministic for a seed; by default a constant
learning rate (the paper's code), optionally SAELens's and dictionary_learning's schedule: linear
learning-rate warm-up, linear decay to zero over the last part of training, and an L1 warm-up. Rows with outlying
norms (massive activations) can be excluded and inputs scaled by a robust statistic. Checkpoints (weights,
optimizer, resampling state, step) are written atomically every ``checkpoint_every`` steps into a folder keyed by
the config, the store and the code revision, so an interrupted run resumes to the same result and a changed config
never resumes someone else's checkpoint. A lock per folder makes a second process training the same config wait and
then reuse the result. A non-finite loss stops training with the step and alpha named; the last good checkpoint is
kept.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from saelib.activations.store import ActivationStore
from saelib.core.artifacts import as_json, atomic_torch_save, atomic_write_json, folder_lock, keyed_dir, read_json
from saelib.core.precision import check_precision, matmul_precision
from saelib.core.progress import progress as progress_bar
from saelib.core.revision import code_revision
from saelib.dictionaries.distributed import DataParallel
from saelib.dictionaries.resampling import ResampleSchedule, resample_dead
from saelib.dictionaries.sae import SAE, SAEConfig, load_sae, save_sae
from saelib.dictionaries.sae.base import ARCHITECTURES, K_ARCHITECTURES, sae_class
from saelib.dictionaries.sae.untied import UntiedSAE


OUTLIER_NORM_RATIO = 20.0  # data-hygiene rule: rows above 20x the median norm are massive activations


class TrainingDivergedError(FloatingPointError):
    pass


@dataclass(frozen=True)
class TrainConfig:
    hook: str
    # "tied" (Cunningham et al.) | "untied" (Bricken et al.) | "topk" | "batchtopk" | "jumprelu" (saelib.dictionaries.sae)
    architecture: str = "tied"
    ratios: tuple[float, ...] = (2.0,)  # dictionary size / activation width
    # sparsity settings, every ratio trained with every one: L1 coefficients (tied, untied), k (topk, batchtopk) or
    # target L0 (jumprelu)
    alphas: tuple[float, ...] = (8.6e-4,)
    lr: float = 1e-3
    batch_size: int = 1024
    epochs: int = 1  # passes over the store
    max_rows: int | None = None  # use only the first rows of the store (smaller budgets)
    seed: int = 0
    exclude_positions: tuple[int, ...] = (0,)  # attention-sink position of every context
    exclude_separator: bool = True  # <|endoftext|> rows carry ~60x the norm of ordinary tokens
    normalize: bool = True  # scale activations so the mean norm is sqrt(d_in): alphas then transfer across layers
    resample: bool = False  # Bricken et al. dead-feature resampling (untied SAE)
    n_resamples: int = 4
    checkpoint_every: int = 200
    allow_zero_alpha: bool = False  # alpha = 0 is the paper's non-sparse control; opt in explicitly
    device: str = "cpu"  # "cuda" for the paper profile; ensembles then run as batched matmuls
    # SAELens's and dictionary_learning's schedule; all 0 = the paper's constant learning rate
    lr_warmup_fraction: float = 0.0  # linear warm-up of the learning rate over this share of the steps
    lr_decay_fraction: float = 0.0  # linear decay to 0 over this final share of the steps
    l1_warmup_fraction: float = 0.0  # the L1 penalty ramps from 0 to alpha over this share of the steps
    # data hygiene: rows with norm above this multiple of the median norm are excluded (massive activations that
    # would otherwise dominate the squared error); None keeps every row
    outlier_norm_ratio: float | None = None
    robust_scale: bool = False  # input scale from the median norm instead of the mean (outliers do not move it)
    # matmuls of each step (saelib.core.precision): "bfloat16" autocasts them; weights and Adam stay float32
    precision: str = "float32"
    # topk and batchtopk: a latent silent for this many training rows is dead and joins the AuxK loss
    dead_after_tokens: int = 1_000_000

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}, got {self.architecture!r}")
        if self.architecture not in L1_ARCHITECTURES and (self.resample or self.l1_warmup_fraction):
            raise ValueError(
                f"resample and l1_warmup_fraction apply to the L1 architectures {L1_ARCHITECTURES}; "
                f"{self.architecture!r} has its own sparsity mechanism: leave them at False / 0"
            )
        if self.architecture == "tied" and self.resample:
            raise ValueError(
                "resample=True needs architecture='untied' (Bricken et al.'s resampling re-initialises encoder and "
                "decoder rows separately and the decoder bias); the tied SAE shares one matrix: leave resample False"
            )
        if self.architecture in K_ARCHITECTURES and not all(
            _is_number(k) and float(k).is_integer() and k >= 1 for k in self.alphas
        ):
            raise ValueError(
                f"for {self.architecture!r} the alphas are k, whole numbers of active latents >= 1; got {self.alphas}"
            )
        if not self.ratios or not all(_is_number(r) and math.isfinite(r) and r > 0 for r in self.ratios):
            raise ValueError(f"dictionary ratios must be positive finite numbers, got {self.ratios}")
        floor_ok = (lambda a: a >= 0) if self.allow_zero_alpha else (lambda a: a > 0)
        bad_a = [a for a in self.alphas if not (_is_number(a) and math.isfinite(a) and floor_ok(a))]
        if not self.alphas or bad_a:
            hint = (
                ""
                if self.allow_zero_alpha
                else " (for the paper's non-sparse alpha=0 control pass allow_zero_alpha=True)"
            )
            raise ValueError(f"alphas must be positive finite numbers, got {bad_a or self.alphas}{hint}")
        for name in ("lr", "batch_size", "epochs", "checkpoint_every", "n_resamples", "dead_after_tokens"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("batch_size", "epochs", "checkpoint_every", "n_resamples"):
            if int(getattr(self, name)) != getattr(self, name):
                raise ValueError(f"{name} must be a whole number, got {getattr(self, name)!r}")
        if self.max_rows is not None and not (_is_number(self.max_rows) and self.max_rows > 0):
            raise ValueError(f"max_rows must be a positive number of rows or None (all rows), got {self.max_rows!r}")
        fractions = (self.lr_warmup_fraction, self.lr_decay_fraction, self.l1_warmup_fraction)
        if not all(_is_number(f) and 0 <= f <= 1 for f in fractions) or fractions[0] + fractions[1] > 1:
            raise ValueError(f"warm-up and decay fractions must be in [0, 1] (warm-up + decay <= 1), got {fractions}")
        if self.outlier_norm_ratio is not None and not (
            _is_number(self.outlier_norm_ratio) and self.outlier_norm_ratio > 1
        ):
            raise ValueError(
                f"outlier_norm_ratio must be a number > 1 (a multiple of the median norm) or None, "
                f"got {self.outlier_norm_ratio!r}"
            )


L1_ARCHITECTURES = ("tied", "untied")


def _is_number(x: object) -> bool:
    """A real number (numpy scalars included); bools are not numbers here."""
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


@dataclass
class TrainResult:
    directory: Path
    saes: dict[float, SAE]  # ratio -> ensemble over alphas
    history: list[dict] = field(default_factory=list)  # per logged step: ratio, alpha, mse, l1, l0
    resampled: dict[float, list[int]] = field(default_factory=dict)  # ratio -> features re-initialised per resample
    seconds: float = 0.0
    rows_seen: int = 0
    # ratio -> {"resampled_features": [per member], "fired_after_resample": [per member]} (see ``revival``)
    revival: dict[float, dict[str, list[int]]] = field(default_factory=dict)
    # ratio -> per resample point of the schedule, per member: features silent over the preceding half interval
    # (what resampling re-initialises there; also counted for runs that do not resample, to compare with them)
    silent: dict[float, list[list[int]]] = field(default_factory=dict)

    def sae(self, ratio: float, alpha: float) -> SAE:
        ens = self.saes[ratio]
        return ens.member(list(ens.cfg.alphas).index(alpha))


def n_features(d_in: int, ratio: float) -> int:
    return max(1, int(round(d_in * ratio)))


def row_mask(store: ActivationStore, cfg: TrainConfig) -> np.ndarray:
    """Rows used for training: not an excluded position, not the document separator, and (if
    ``cfg.outlier_norm_ratio`` is set) no norm above that multiple of the median norm of ``cfg.hook``."""
    pos = np.arange(store.n_rows) % store.context_length
    keep = ~np.isin(pos, cfg.exclude_positions)
    if cfg.exclude_separator:
        keep &= np.asarray(store.tokens).reshape(-1) != store.config.get("separator_id", -1)
    if cfg.outlier_norm_ratio is not None:
        keep &= ~outlier_rows(store, cfg.hook, keep, cfg.outlier_norm_ratio)
    return keep


def row_norms(store: ActivationStore, hook: str, block_rows: int = 65_536) -> np.ndarray:
    """‖x‖ of every row of ``hook`` [n_rows], float32, read block by block."""
    arr = store.activations(hook)
    return np.concatenate(
        [
            np.linalg.norm(np.asarray(arr[i : i + block_rows], dtype=np.float32), axis=1)
            for i in range(0, store.n_rows, block_rows)
        ]
    )


def outlier_rows(store: ActivationStore, hook: str, mask: np.ndarray, ratio: float) -> np.ndarray:
    """Rows whose norm exceeds ``ratio`` x the median norm of the ``mask``ed rows [n_rows] (bool)."""
    norms = row_norms(store, hook)
    return norms > ratio * np.median(norms[mask])


def input_scale(store: ActivationStore, hook: str, mask: np.ndarray, n: int = 16_384, robust: bool = False) -> float:
    """sqrt(d_in) / mean ‖x‖ over (masked) rows: scaled activations have per-element RMS about 1 at every layer,
    so one alpha grid gives comparable sparsity across layers (SAELens' "expected_average_only_in"). ``robust``
    uses the median norm, which a few massive-activation rows cannot move."""
    if not mask.any():
        raise ValueError(
            f"no rows of {hook} are left to train on after the row mask (positions, separators, "
            f"outliers); the store {store.dir.name} has {store.n_rows} rows: harvest more contexts"
        )
    x = next(store.batches(hook, n, seed=12345, row_mask=mask))
    norms = x.norm(dim=-1)
    if not torch.isfinite(norms).all():
        raise FloatingPointError(
            f"non-finite activations in {store.dir.name}, hook {hook}: the store is corrupt; "
            "delete the folder and harvest again"
        )
    centre = norms.median() if robust else norms.mean()
    return float(x.shape[1] ** 0.5 / centre)


def count_batches(
    store: ActivationStore,
    batch_size: int,
    seed: int,
    max_rows: int | None = None,
    row_mask: np.ndarray | None = None,
    block_rows: int = 8192,
    buffer_blocks: int = 8,
) -> int:
    """How many batches ``store.batches`` yields with these arguments, without reading any activation: each buffer
    of blocks ends with a short batch, so the count is a sum over buffers (the schedules need the exact total)."""
    n = min(store.n_rows, max_rows or store.n_rows)
    starts = np.random.default_rng(seed).permutation(np.arange(0, n, block_rows))  # the same draw as batches()
    total = 0
    for i in range(0, len(starts), buffer_blocks):
        rows = sum(
            int(row_mask[s : min(s + block_rows, n)].sum()) if row_mask is not None else min(s + block_rows, n) - s
            for s in starts[i : i + buffer_blocks]
        )
        total += math.ceil(rows / batch_size)
    return total


def _masked_sample(store: ActivationStore, hook: str, mask: np.ndarray, n: int, seed: int) -> torch.Tensor:
    """``n`` random rows among the training rows (resampling draws its candidate inputs from these)."""
    rows = np.flatnonzero(mask)
    rows = np.sort(np.random.default_rng(seed).choice(rows, size=min(n, len(rows)), replace=False))
    return torch.from_numpy(np.asarray(store.activations(hook)[rows], dtype=np.float32))


def lr_factor(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Multiplier of ``cfg.lr`` at ``step`` (1-based): linear warm-up, constant, linear decay to 0."""
    warm, decay = cfg.lr_warmup_fraction * total_steps, cfg.lr_decay_fraction * total_steps
    if warm and step <= warm:
        return step / warm
    if decay and step > total_steps - decay:
        return max(0.0, (total_steps - step + 1) / decay)
    return 1.0


def l1_factor(cfg: TrainConfig, step: int, total_steps: int) -> float:
    warm = cfg.l1_warmup_fraction * total_steps
    return min(1.0, step / warm) if warm else 1.0


def _build(cfg: TrainConfig, d_in: int, ratio: float, model: str, extra: dict, scale: float) -> SAE:
    sae_cfg = SAEConfig(
        cfg.architecture,
        d_in,
        n_features(d_in, ratio),
        tuple(float(a) for a in cfg.alphas),
        model,
        cfg.hook,
        scale,
        extra,
        dead_after_tokens=cfg.dead_after_tokens,
    )
    cls = sae_class(cfg.architecture)
    # the init seed depends on the size: otherwise a small dictionary's initial rows would equal the first rows of
    # a larger one, and MMCS between ratios would measure the shared initialisation, not what training found
    return cls(sae_cfg, seed=cfg.seed * 100_003 + sae_cfg.n_features)


def train_saes(
    store: ActivationStore,
    cfg: TrainConfig,
    name: str = "sae",
    progress: bool = True,
    log_every: int = 25,
    data_parallel: DataParallel | None = None,
    rows_on_device: bool | None = None,
) -> TrainResult:
    """Train every (ratio, alpha) of ``cfg`` on ``store``'s rows of ``cfg.hook``; resumes and caches by config.
    With ``data_parallel`` (every rank of a torchrun group calls this), each rank trains on its share of every
    batch (see ``saelib.dictionaries.distributed``); the result is cached apart from one-process runs.

    ``rows_on_device``: copy the hook's rows to ``cfg.device`` once and gather every batch there instead of reading
    the disk; the batches are the same, so is the result (not part of the cache key). None (default): on a GPU
    when the rows fit in half its free memory (``rows_fit_on_device``), never on a CPU (the page cache already
    serves the store from memory)."""
    width = store.width(cfg.hook)  # raises KeyError listing the store's hooks
    key = {"train": cfg, "store": store.dir.name}
    if data_parallel is not None:
        key["data_parallel_ranks"] = data_parallel.world
    directory = keyed_dir("saes", name, key)
    if (directory / "DONE.json").exists():
        return _load_result(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if data_parallel is not None:  # the ranks train together: a lock would make them wait for each other forever
        data_parallel.barrier()
        return _train(
            store, cfg, directory, width, progress and data_parallel.writer, log_every, data_parallel, rows_on_device
        )
    with folder_lock(directory):  # a second process with this config waits here, then finds DONE.json
        if (directory / "DONE.json").exists():
            return _load_result(directory)
        return _train(store, cfg, directory, width, progress, log_every, rows_on_device=rows_on_device)


def rows_fit_on_device(store: ActivationStore, cfg: TrainConfig, share: float = 0.5) -> bool:
    """Whether ``cfg.hook``'s training rows (``cfg.max_rows`` of them, in the store's dtype) take at most ``share``
    of ``cfg.device``'s free memory; False on a CPU."""
    device = torch.device(cfg.device)
    if device.type != "cuda":
        return False
    n = min(store.n_rows, cfg.max_rows or store.n_rows)
    needed = n * store.width(cfg.hook) * np.dtype(store.config["dtype"]).itemsize
    free, _ = torch.cuda.mem_get_info(device)
    return needed <= share * free


def _batches(
    store: ActivationStore, cfg: TrainConfig, epoch: int, mask: np.ndarray, resident: torch.Tensor | None
) -> Iterator[torch.Tensor]:
    """One epoch's shuffled batches, read from the disk or gathered from ``resident`` rows (the same batches)."""
    kw: dict[str, Any] = {"seed": cfg.seed * 1000 + epoch, "max_rows": cfg.max_rows, "row_mask": mask}
    if resident is None:
        yield from (x.to(cfg.device) for x in store.batches(cfg.hook, cfg.batch_size, **kw))
        return
    for rows in store.batch_rows(cfg.batch_size, **kw):
        yield resident[torch.from_numpy(rows).to(resident.device)].float()


def _train(
    store: ActivationStore,
    cfg: TrainConfig,
    directory: Path,
    width: int,
    progress: bool,
    log_every: int,
    data_parallel: DataParallel | None = None,
    rows_on_device: bool | None = None,
) -> TrainResult:
    writer = data_parallel is None or data_parallel.writer
    torch.manual_seed(cfg.seed)
    mask = row_mask(store, cfg)
    n_rows = int(mask[: cfg.max_rows].sum()) if cfg.max_rows else int(mask.sum())
    if n_rows == 0:
        raise ValueError(
            f"no rows to train on: the store {store.dir.name} has {store.n_rows} rows, none left after "
            f"max_rows={cfg.max_rows} and the row mask; harvest more contexts"
        )
    total_steps = sum(
        count_batches(store, cfg.batch_size, seed=cfg.seed * 1000 + epoch, max_rows=cfg.max_rows, row_mask=mask)
        for epoch in range(cfg.epochs)
    )
    extra = {
        "store": store.dir.name,
        "train_rows": n_rows,
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "exclude_positions": list(cfg.exclude_positions),
        "exclude_separator": cfg.exclude_separator,
        "outlier_norm_ratio": cfg.outlier_norm_ratio,
        "steps": total_steps,
        "code_revision": code_revision("saes"),
    }
    scale = input_scale(store, cfg.hook, mask, robust=cfg.robust_scale) if cfg.normalize else 1.0
    saes = {r: _build(cfg, width, r, store.config["model"], extra, scale).to(cfg.device) for r in cfg.ratios}
    if cfg.architecture != "tied":  # every other architecture has the untied SAE's decoder bias
        sample = store.sample(cfg.hook, 8192, seed=cfg.seed).to(cfg.device)
        for sae in saes.values():
            cast(UntiedSAE, sae).init_decoder_bias(sample)
    opts = {r: torch.optim.Adam(s.parameters(), lr=cfg.lr) for r, s in saes.items()}
    schedule = ResampleSchedule.scaled(total_steps, cfg.n_resamples)  # silent features are counted either way
    last_fired = {
        r: torch.zeros(s.cfg.n_models, s.cfg.n_features, dtype=torch.long, device=cfg.device) for r, s in saes.items()
    }
    resampled_at = {r: torch.zeros_like(f) for r, f in last_fired.items()}  # last step each feature was resampled
    state: dict[str, Any] = {
        "step": 0,
        "history": [],
        "resampled": {str(r): [] for r in cfg.ratios},
        "seconds": 0.0,
        "silent": {str(r): [] for r in cfg.ratios},
    }
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    if (directory / "checkpoint.pt").exists():
        state = _restore(directory, cfg, saes, opts, last_fired, resampled_at, gen)
        state.setdefault("silent", {str(r): [] for r in cfg.ratios})  # checkpoints from before it was counted
    elif writer:
        atomic_write_json(
            directory / "config.json", {"train": cfg, "store": store.dir.name, "code_revision": code_revision("saes")}
        )
    if rows_on_device is None:
        rows_on_device = rows_fit_on_device(store, cfg)
    resident = store.rows_on(cfg.hook, cfg.device, cfg.max_rows) if rows_on_device else None
    bar = progress_bar(total=total_steps, initial=state["step"], enabled=progress, desc=f"train {cfg.hook}")
    step, start = 0, time.perf_counter() - state["seconds"]
    for epoch in range(cfg.epochs):
        for x in _batches(store, cfg, epoch, mask, resident):
            n_batch = len(x)
            if data_parallel is not None:
                x = data_parallel.shard(x)
            step += 1
            if step <= state["step"]:
                continue  # resuming: these batches were already trained on
            lr = cfg.lr * lr_factor(cfg, step, total_steps)
            l1_scale = l1_factor(cfg, step, total_steps)
            for r, sae in saes.items():
                for group in opts[r].param_groups:
                    group["lr"] = lr
                terms = train_step(sae, opts[r], x, step, l1_scale, data_parallel, n_batch, cfg.precision)
                fired = terms["fired"] if data_parallel is None else data_parallel.any_rank(terms["fired"])
                last_fired[r][fired] = step
                if step % log_every == 0 or step == total_steps:
                    l0 = terms["l0"]
                    for i, a in enumerate(sae.cfg.alphas):
                        state["history"].append(
                            {
                                "step": step,
                                "ratio": r,
                                "alpha": a,
                                "mse": float(terms["mse"][i]),
                                "l1": float(terms["l1"][i]),
                                "l0": float(l0[i]),
                            }
                        )
                if step in schedule.steps:
                    dead = last_fired[r] <= step - schedule.window
                    state["silent"][str(r)].append(dead.sum(1).tolist())
                    if cfg.resample:
                        inputs = _masked_sample(store, cfg.hook, mask, 16_384, seed=cfg.seed + step).to(cfg.device)
                        untied = cast(UntiedSAE, sae)  # resampling acts on the untied SAE's parameters
                        state["resampled"][str(r)].append(resample_dead(untied, opts[r], dead, inputs, gen))
                        resampled_at[r][dead] = step
            bar.update(1)
            if step % cfg.checkpoint_every == 0 and writer:
                state.update(step=step, seconds=time.perf_counter() - start)
                _checkpoint(directory, saes, opts, last_fired, resampled_at, state, gen)
    bar.close()
    state.update(step=step, seconds=time.perf_counter() - start)
    if writer:
        for r, sae in saes.items():
            save_sae(sae.cpu(), directory / f"ratio{r:g}")
        atomic_write_json(
            directory / "DONE.json",
            {
                **state,
                "rows_seen": n_rows * cfg.epochs,
                "revival": revival(last_fired, resampled_at),
                "rows_on_device": resident is not None,
            },
        )
        (directory / "checkpoint.pt").unlink(missing_ok=True)
    if data_parallel is not None:
        data_parallel.barrier()  # the other ranks read what rank 0 wrote
    return _load_result(directory)


def train_step(
    sae: SAE,
    opt: torch.optim.Adam,
    x: torch.Tensor,
    step: int,
    l1_scale: float = 1.0,
    data_parallel: DataParallel | None = None,
    n_batch: int = 0,
    precision: str = "float32",
) -> dict[str, torch.Tensor]:
    """One Adam step for every member. On a CPU the members run one at a time (a small working set that stays in
    cache: batching them was ~20% slower per member here); on a GPU they run as one batched matmul. ``l1_scale``
    < 1 during an L1 warm-up. With ``data_parallel``, ``x`` is this rank's share of a batch of ``n_batch`` rows and
    the gradients are combined over ranks before the step. ``precision``: the matmuls' (``saelib.core.precision``);
    the backward pass follows the forward's dtypes, the parameters and their gradients stay float32."""
    one_pass = members_at_once(sae, x)
    if one_pass or len(x) == 0:  # one member at a time overwrites every gradient slice: nothing to zero
        opt.zero_grad(set_to_none=True)
    if len(x) == 0:  # a rank with no rows of a short last batch still takes part in the reduction
        if data_parallel is None:
            raise ValueError(f"an empty batch at step {step}: only a rank of data-parallel training can get no rows")
        data_parallel.reduce_grads(sae.parameters(), 0, n_batch)
        sae.before_step()
        opt.step()
        sae.after_step()
        none = torch.zeros(sae.cfg.n_models, device=x.device)
        return {
            "loss": none,
            "mse": none,
            "l1": none,
            "l0": none,
            "fired": torch.zeros(sae.cfg.n_models, sae.cfg.n_features, dtype=torch.bool, device=x.device),
        }
    if not torch.isfinite(x).all():  # once per batch, before any member trains on it
        bad = int((~torch.isfinite(x)).any(-1).nonzero()[0])
        raise TrainingDivergedError(
            f"non-finite input activation in row {bad} of the batch at step {step}: "
            "the activation store is corrupt; delete it and harvest again"
        )
    if one_pass:
        parts = [_backward(sae, x, None, dict(sae.named_parameters()), step, l1_scale, precision)]
    else:
        parts = [_member_backward(sae, x, i, step, l1_scale, precision) for i in range(sae.cfg.n_models)]
    if data_parallel is not None:
        data_parallel.reduce_grads(sae.parameters(), len(x), n_batch)
    sae.before_step()
    opt.step()
    sae.after_step()
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def members_at_once(sae: SAE, x: torch.Tensor) -> bool:
    """Whether ``train_step`` runs every member in one batched matmul (a GPU, or one member) rather than one at a time
    (a CPU, where each member's working set stays in cache)."""
    return x.is_cuda or sae.cfg.n_models == 1


def _member_backward(
    sae: SAE, x: torch.Tensor, i: int, step: int, l1_scale: float, precision: str
) -> dict[str, torch.Tensor]:
    """Member ``i``'s loss and gradients, computed on leaf copies of its parameter slices and written into its slice
    of each parameter's ``.grad``: autograd through a slice of the shared tensor would zero-fill a full-size gradient
    per member and add them up (untied MLP step 1.2x faster, gradients bit-identical:
    tests/unit/dictionaries/test_train.py)."""
    params = dict(sae.named_parameters())
    leaves = {name: p[i : i + 1].detach().requires_grad_() for name, p in params.items()}
    part = _backward(sae, x, i, leaves, step, l1_scale, precision)
    for name, p in params.items():
        if p.grad is None:  # every slice is overwritten below, so the buffer is reused from step to step
            p.grad = torch.empty_like(p)
        grad = leaves[name].grad
        if grad is None:  # a parameter this member's loss does not use
            p.grad[i : i + 1].zero_()
        else:
            p.grad[i : i + 1].copy_(grad)
    return part


def _backward(
    sae: SAE,
    x: torch.Tensor,
    i: int | None,
    params: dict[str, torch.Tensor],
    step: int,
    l1_scale: float,
    precision: str,
) -> dict[str, torch.Tensor]:
    """Forward and backward of member ``i`` (None: every member at once) from ``params``; the terms to log."""
    members = slice(None) if i is None else slice(i, i + 1)
    alphas = sae.alphas[members]
    with matmul_precision(precision, x.device):
        terms = sae.loss_from_params(x, {**params, **sae.loss_state(members)}, alphas)
    if l1_scale != 1.0:
        terms["loss"] = terms["loss"] - (1.0 - l1_scale) * alphas * terms["l1"]
    if not torch.isfinite(terms["loss"]).all():
        names = sae.cfg.alphas if i is None else (sae.cfg.alphas[i],)
        bad = [a for a, ok in zip(names, torch.isfinite(terms["loss"]).tolist()) if not ok]
        raise TrainingDivergedError(
            f"non-finite loss at step {step} for alpha={bad} (ratio {sae.cfg.ratio:g}); training stopped. "
            "The last good checkpoint is kept; try a smaller learning rate."
        )
    terms["loss"].sum().backward()  # members are independent: each gradient lands in its own slice
    on = terms["codes"].detach() > 0
    return {
        "loss": terms["loss"].detach(),
        "mse": terms["mse"].detach(),
        "l1": terms["l1"].detach(),
        "fired": on.any(1),
        "l0": on.sum(-1).float().mean(-1),
    }


def revival(last_fired: dict, resampled_at: dict) -> dict[str, dict[str, list[int]]]:
    """Per ratio and member: how many distinct features resampling re-initialised, and how many of them fired again
    after their last re-initialisation (revived, not merely reset)."""
    out = {}
    for r, at in resampled_at.items():
        hit = at > 0
        out[str(r)] = {
            "resampled_features": hit.sum(1).tolist(),
            "fired_after_resample": (hit & (last_fired[r] > at)).sum(1).tolist(),
        }
    return out


def _checkpoint(directory: Path, saes, opts, last_fired, resampled_at, state, gen: torch.Generator) -> None:
    blob = {
        "saes": {r: s.state_dict() for r, s in saes.items()},
        "opts": {r: o.state_dict() for r, o in opts.items()},
        "last_fired": last_fired,
        "resampled_at": resampled_at,
        "state": state,
        "resample_rng": gen.get_state(),
    }
    atomic_torch_save(blob, directory / "checkpoint.pt")


def _restore(directory: Path, cfg: TrainConfig, saes, opts, last_fired, resampled_at, gen: torch.Generator) -> dict:
    saved = read_json(directory / "config.json")
    if saved["train"] != as_json(cfg):  # cannot happen for a keyed folder unless it was edited by hand
        raise RuntimeError(f"{directory} holds a checkpoint of another config; delete it to start over")
    try:  # weights_only: a planted checkpoint.pt cannot run code
        blob = torch.load(directory / "checkpoint.pt", weights_only=True)
    except Exception as err:
        raise RuntimeError(
            f"{directory / 'checkpoint.pt'} is not a checkpoint this code wrote ({err}); delete it "
            "to restart training from the beginning"
        ) from err
    for r in saes:
        saes[r].load_state_dict(blob["saes"][r])
        opts[r].load_state_dict(blob["opts"][r])
        last_fired[r].copy_(blob["last_fired"][r])
        if "resampled_at" in blob:  # absent from checkpoints written before revival was tracked
            resampled_at[r].copy_(blob["resampled_at"][r])
    gen.set_state(blob["resample_rng"])
    return blob["state"]


def _load_result(directory: Path) -> TrainResult:
    done = read_json(directory / "DONE.json")
    cfg = read_json(directory / "config.json")["train"]
    saes = {float(r): load_sae(directory / f"ratio{float(r):g}") for r in cfg["ratios"]}
    return TrainResult(
        directory,
        saes,
        done["history"],
        {float(k): v for k, v in done["resampled"].items()},
        done["seconds"],
        done["rows_seen"],
        {float(k): v for k, v in done.get("revival", {}).items()},
        {float(k): v for k, v in done.get("silent", {}).items()},
    )


def fit_tensor(
    sae: SAE, x: torch.Tensor, epochs: int = 10, batch_size: int = 256, lr: float = 1e-3, seed: int = 0
) -> SAE:
    """Train an ensemble on an in-memory tensor [n, d_in] (synthetic benchmarks, small experiments)."""
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            step += 1
            train_step(sae, opt, x[idx], step)
    return sae
