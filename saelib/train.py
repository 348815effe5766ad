"""Training sparse autoencoders on a harvested activation store.

One pass over shuffled batches trains every (ratio, alpha) pair of a sweep: members with the same ratio form one
ensemble (batched matmuls, see ``saelib.sae``), and each batch read from disk is fed to every ensemble. Adam,
constant learning rate, deterministic for a seed. Checkpoints (weights, optimizer, step) are written atomically
every ``checkpoint_every`` steps into a folder keyed by the config and the store, so an interrupted run resumes and
a changed config never resumes someone else's checkpoint. A non-finite loss stops training with the step and alpha
named; the last good checkpoint is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from saelib.artifacts import as_json, atomic_write_json, keyed_dir, read_json
from saelib.progress import progress as progress_bar
from saelib.resampling import ResampleSchedule, resample_dead
from saelib.sae import SAE, SAEConfig, TiedSAE, UntiedSAE, load_sae, save_sae
from saelib.store import ActivationStore


class TrainingDivergedError(FloatingPointError):
    pass


@dataclass(frozen=True)
class TrainConfig:
    hook: str
    architecture: str = "tied"  # "tied" (Cunningham et al.) | "untied" (Bricken et al.)
    ratios: tuple[float, ...] = (2.0,)  # dictionary size / activation width
    alphas: tuple[float, ...] = (8.6e-4,)  # sparsity penalties; every ratio is trained with every alpha
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

    def __post_init__(self) -> None:
        if self.architecture not in ("tied", "untied"):
            raise ValueError(f"architecture must be 'tied' or 'untied', got {self.architecture!r}")
        bad_r = [r for r in self.ratios if not (r > 0)]
        if not self.ratios or bad_r:
            raise ValueError(f"dictionary ratios must be positive, got {self.ratios}")
        floor_ok = (lambda a: a >= 0) if self.allow_zero_alpha else (lambda a: a > 0)
        bad_a = [a for a in self.alphas if not (isinstance(a, (int, float)) and math.isfinite(a) and floor_ok(a))]
        if not self.alphas or bad_a:
            hint = "" if self.allow_zero_alpha else " (for the paper's non-sparse alpha=0 control pass allow_zero_alpha=True)"
            raise ValueError(f"alphas must be positive finite numbers, got {bad_a or self.alphas}{hint}")
        if self.lr <= 0 or self.batch_size <= 0 or self.epochs <= 0:
            raise ValueError("lr, batch_size and epochs must be positive")


@dataclass
class TrainResult:
    directory: Path
    saes: dict[float, SAE]  # ratio -> ensemble over alphas
    history: list[dict] = field(default_factory=list)  # per logged step: ratio, alpha, mse, l1, l0
    resampled: dict[float, list[int]] = field(default_factory=dict)  # ratio -> features revived per resample
    seconds: float = 0.0
    rows_seen: int = 0

    def sae(self, ratio: float, alpha: float) -> SAE:
        ens = self.saes[ratio]
        return ens.member(list(ens.cfg.alphas).index(alpha))


def n_features(d_in: int, ratio: float) -> int:
    return max(1, int(round(d_in * ratio)))


def row_mask(store: ActivationStore, cfg: TrainConfig) -> np.ndarray:
    """Rows used for training: not an excluded position, not the document separator."""
    pos = np.arange(store.n_rows) % store.context_length
    keep = ~np.isin(pos, cfg.exclude_positions)
    if cfg.exclude_separator:
        keep &= np.asarray(store.tokens).reshape(-1) != store.config.get("separator_id", -1)
    return keep


def input_scale(store: ActivationStore, hook: str, mask: np.ndarray, n: int = 16_384) -> float:
    """sqrt(d_in) / mean ‖x‖ over (masked) rows: scaled activations have per-element RMS about 1 at every layer,
    so one alpha grid gives comparable sparsity across layers (SAELens' "expected_average_only_in")."""
    x = next(store.batches(hook, n, seed=12345, row_mask=mask))
    return float(x.shape[1] ** 0.5 / x.norm(dim=-1).mean())


def _build(cfg: TrainConfig, d_in: int, ratio: float, model: str, extra: dict, scale: float) -> SAE:
    sae_cfg = SAEConfig(cfg.architecture, d_in, n_features(d_in, ratio), tuple(float(a) for a in cfg.alphas),
                        model, cfg.hook, scale, extra)
    cls = TiedSAE if cfg.architecture == "tied" else UntiedSAE
    # the init seed depends on the size: otherwise a small dictionary's initial rows would equal the first rows of
    # a larger one, and MMCS between ratios would measure the shared initialisation, not what training found
    return cls(sae_cfg, seed=cfg.seed * 100_003 + sae_cfg.n_features)


def train_saes(store: ActivationStore, cfg: TrainConfig, name: str = "sae", progress: bool = True,
               log_every: int = 25) -> TrainResult:
    """Train every (ratio, alpha) of ``cfg`` on ``store``'s rows of ``cfg.hook``; resumes and caches by config."""
    width = store.width(cfg.hook)  # raises KeyError listing the store's hooks
    directory = keyed_dir("saes", name, {"train": cfg, "store": store.dir.name})
    if (directory / "DONE.json").exists():
        return _load_result(directory)
    torch.manual_seed(cfg.seed)
    mask = row_mask(store, cfg)
    n_rows = int(mask[: cfg.max_rows].sum()) if cfg.max_rows else int(mask.sum())
    steps_per_epoch = math.ceil(n_rows / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    extra = {"store": store.dir.name, "train_rows": n_rows, "epochs": cfg.epochs, "lr": cfg.lr,
             "batch_size": cfg.batch_size, "seed": cfg.seed, "exclude_positions": list(cfg.exclude_positions),
             "exclude_separator": cfg.exclude_separator}
    scale = input_scale(store, cfg.hook, mask) if cfg.normalize else 1.0
    saes = {r: _build(cfg, width, r, store.config["model"], extra, scale).to(cfg.device) for r in cfg.ratios}
    if cfg.architecture == "untied":
        sample = store.sample(cfg.hook, 8192, seed=cfg.seed).to(cfg.device)
        for sae in saes.values():
            sae.init_decoder_bias(sample)
    opts = {r: torch.optim.Adam(s.parameters(), lr=cfg.lr) for r, s in saes.items()}
    schedule = ResampleSchedule.scaled(total_steps, cfg.n_resamples) if cfg.resample else ResampleSchedule((), 1)
    last_fired = {r: torch.zeros(s.cfg.n_models, s.cfg.n_features, dtype=torch.long) for r, s in saes.items()}
    state = {"step": 0, "history": [], "resampled": {str(r): [] for r in cfg.ratios}, "seconds": 0.0}
    if (directory / "checkpoint.pt").exists():
        state = _restore(directory, cfg, saes, opts, last_fired)
    else:
        atomic_write_json(directory / "config.json", {"train": cfg, "store": store.dir.name})
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    bar = progress_bar(total=total_steps, initial=state["step"], enabled=progress, desc=f"train {cfg.hook}")
    step, start = 0, time.perf_counter() - state["seconds"]
    for epoch in range(cfg.epochs):
        batches = store.batches(cfg.hook, cfg.batch_size, seed=cfg.seed * 1000 + epoch, max_rows=cfg.max_rows,
                                row_mask=mask)
        for x in batches:
            x = x.to(cfg.device)
            step += 1
            if step <= state["step"]:
                continue  # resuming: these batches were already trained on
            for r, sae in saes.items():
                terms = _step(sae, opts[r], x, step)
                last_fired[r][terms["fired"]] = step
                if step % log_every == 0 or step == total_steps:
                    l0 = terms["l0"]
                    for i, a in enumerate(sae.cfg.alphas):
                        state["history"].append({"step": step, "ratio": r, "alpha": a, "mse": float(terms["mse"][i]),
                                                 "l1": float(terms["l1"][i]), "l0": float(l0[i])})
                if step in schedule.steps:
                    dead = last_fired[r] <= step - schedule.window
                    inputs = store.sample(cfg.hook, min(819_200, 16_384), seed=cfg.seed + step).to(cfg.device)
                    state["resampled"][str(r)].append(resample_dead(sae, opts[r], dead, inputs, gen))
            bar.update(1)
            if step % cfg.checkpoint_every == 0:
                state.update(step=step, seconds=time.perf_counter() - start)
                _checkpoint(directory, saes, opts, last_fired, state)
    bar.close()
    state.update(step=step, seconds=time.perf_counter() - start)
    for r, sae in saes.items():
        save_sae(sae.cpu(), directory / f"ratio{r:g}")
    atomic_write_json(directory / "DONE.json", {**state, "rows_seen": n_rows * cfg.epochs})
    (directory / "checkpoint.pt").unlink(missing_ok=True)
    return _load_result(directory)


def _step(sae: SAE, opt: torch.optim.Adam, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
    """One Adam step for every member. On a CPU the members run one at a time (a small working set that stays in
    cache: batching them was ~20% slower per member here); on a GPU they run as one batched matmul."""
    opt.zero_grad(set_to_none=True)
    members = [None] if x.is_cuda or sae.cfg.n_models == 1 else range(sae.cfg.n_models)
    parts = []
    for i in members:
        terms = sae.loss_terms(x, i)
        if not torch.isfinite(terms["loss"]).all():
            alphas = sae.cfg.alphas if i is None else (sae.cfg.alphas[i],)
            bad = [a for a, ok in zip(alphas, torch.isfinite(terms["loss"]).tolist()) if not ok]
            raise TrainingDivergedError(
                f"non-finite loss at step {step} for alpha={bad} (ratio {sae.cfg.ratio:g}); training stopped. "
                "The last good checkpoint is kept; try a smaller learning rate.")
        terms["loss"].sum().backward()  # members are independent: each gradient lands in its own slice
        on = terms["codes"].detach() > 0
        parts.append({"loss": terms["loss"].detach(), "mse": terms["mse"].detach(), "l1": terms["l1"].detach(),
                      "fired": on.any(1), "l0": on.sum(-1).float().mean(-1)})
    sae.before_step()
    opt.step()
    sae.after_step()
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _checkpoint(directory: Path, saes, opts, last_fired, state) -> None:
    blob = {"saes": {r: s.state_dict() for r, s in saes.items()}, "opts": {r: o.state_dict() for r, o in opts.items()},
            "last_fired": last_fired, "state": state}
    tmp = directory / ".checkpoint.pt.tmp"
    torch.save(blob, tmp)
    tmp.replace(directory / "checkpoint.pt")


def _restore(directory: Path, cfg: TrainConfig, saes, opts, last_fired) -> dict:
    saved = read_json(directory / "config.json")
    if saved["train"] != as_json(cfg):  # cannot happen for a keyed folder unless it was edited by hand
        raise RuntimeError(f"{directory} holds a checkpoint of another config; delete it to start over")
    blob = torch.load(directory / "checkpoint.pt", weights_only=False)
    for r in saes:
        saes[r].load_state_dict(blob["saes"][r])
        opts[r].load_state_dict(blob["opts"][r])
        last_fired[r].copy_(blob["last_fired"][r])
    return blob["state"]


def _load_result(directory: Path) -> TrainResult:
    done = read_json(directory / "DONE.json")
    cfg = read_json(directory / "config.json")["train"]
    saes = {float(r): load_sae(directory / f"ratio{float(r):g}") for r in cfg["ratios"]}
    return TrainResult(directory, saes, done["history"], {float(k): v for k, v in done["resampled"].items()},
                       done["seconds"], done["rows_seen"])



def fit_tensor(sae: SAE, x: torch.Tensor, epochs: int = 10, batch_size: int = 256, lr: float = 1e-3,
               seed: int = 0) -> SAE:
    """Train an ensemble on an in-memory tensor [n, d_in] (synthetic benchmarks, small experiments)."""
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            step += 1
            _step(sae, opt, x[idx], step)
    return sae
