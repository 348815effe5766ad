"""Automated interpretability scores (Bills et al. 2023 protocol, as in Cunningham et al. 2023, Fig. 2).

Per feature: select records (``fragments.select_records``), explain from the 5 explanation records, simulate the 5
held-out top and 5 random records from the explanation alone, and score with Pearson correlations between simulated
and true activations over all 10 records (top-and-random), the top 5 and the random 5. A feature that never fires
on the fragments is kept with status "never fires" and score 0 (it explains nothing) so it neither crashes the run
nor puts a NaN in a mean; a constant prediction also scores 0.

``score_dictionary`` saves scores under a folder keyed by everything that determines them and keeps them when the
explainer or simulator fails half-way (e.g. an unreachable LLM endpoint); run it again to resume.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from saelib.core.artifacts import atomic_write_json, keyed_dir, read_json
from saelib.core.stats import mean_se
from saelib.interp.explanations import Explainer, Simulator, cache_key, pearson
from saelib.interp.fragments import Fragments, Record, select_records

SCORE_COLUMNS = ("top_and_random", "top", "random")


@dataclass(frozen=True)
class ProtocolConfig:
    n_top: int = 20  # fragments ranked by max activation
    n_random: int = 20  # fragments drawn among those where the feature fires
    per_split: int = 5  # records to explain from, and per scoring split
    seed: int = 0


@dataclass(frozen=True)
class FeatureScore:
    feature: int
    status: str  # "scored" | "never fires"
    n_firing: int  # fragments with a non-zero activation
    explanation: str
    top_and_random: float
    top: float
    random: float


def _check_simulation(sims: list[np.ndarray], records: list[Record], simulator: Simulator) -> None:
    for sim, rec in zip(sims, records, strict=True):
        if len(sim) != len(rec.tokens) or not np.all(np.isfinite(sim)):
            raise ValueError(
                f"{simulator.name} returned {len(sim)} values (finite: {bool(np.all(np.isfinite(sim)))}) "
                f"for a record of {len(rec.tokens)} tokens"
            )


def score_records(explanation: str, top: list[Record], rand: list[Record], simulator: Simulator) -> dict[str, float]:
    """The three correlations for one explanation on its scoring records."""
    records = top + rand
    sims = simulator.simulate(explanation, [r.tokens for r in records])
    _check_simulation(sims, records, simulator)
    truth = [r.activations for r in records]
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    n = len(top)
    return {
        "top_and_random": pearson(cat(sims), cat(truth)),
        "top": pearson(cat(sims[:n]), cat(truth[:n])),
        "random": pearson(cat(sims[n:]), cat(truth[n:])),
    }


def score_feature(
    feature: int,
    acts: np.ndarray,
    fragments: Fragments,
    explainer: Explainer,
    simulator: Simulator,
    cfg: ProtocolConfig = ProtocolConfig(),
) -> FeatureScore:
    """Score one feature from its activations on every fragment, [n_fragments, length]."""
    splits = select_records(acts, cfg.n_top, cfg.n_random, cfg.per_split, seed=cfg.seed + feature)
    if splits.n_firing == 0:
        return FeatureScore(feature, "never fires", 0, "", 0.0, 0.0, 0.0)
    explanation = explainer.explain(fragments.records(splits.explain, acts))
    scores = score_records(
        explanation, fragments.records(splits.score_top, acts), fragments.records(splits.score_random, acts), simulator
    )
    return FeatureScore(feature, "scored", splits.n_firing, explanation, **scores)


def score_dictionary(
    fragments: Fragments,
    hook: str,
    dictionary,
    features: list[int],
    explainer: Explainer,
    simulator: Simulator,
    dictionary_key: dict,
    cfg: ProtocolConfig = ProtocolConfig(),
    save_every_s: float = 5.0,
    activations: np.ndarray | None = None,
) -> pd.DataFrame:
    """Scores of ``features`` of ``dictionary`` at ``hook``, one row per feature (``FeatureScore`` columns).

    ``dictionary_key`` identifies the dictionary (e.g. its SAE folder and alpha, or a baseline's fit config); with
    the fragments, features, explainer, simulator and protocol it keys the results folder, so a changed parameter
    never reuses stale scores. Scores are saved as they are computed (at least every ``save_every_s`` seconds and
    whenever an error stops the run); a rerun skips the features already scored. ``activations`` [n_features,
    n_fragments, length], when the caller already has ``fragments.activations(hook, dictionary, features)``, saves
    encoding the pool again."""
    key = {
        "dictionary": dictionary_key,
        "hook": hook,
        "fragments": fragments.store.dir.name,
        "fragment_length": fragments.length,
        "features": list(features),
        "explainer": cache_key(explainer),
        "simulator": cache_key(simulator),
        "protocol": asdict(cfg),
    }
    directory = keyed_dir("autointerp", "scores", key)
    path = directory / "scores.json"
    done: dict[int, dict] = {row["feature"]: row for row in (read_json(path) if path.exists() else [])}
    todo = [f for f in features if f not in done]
    if todo:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / "config.json", key)
        if activations is None:
            acts = fragments.activations(hook, dictionary, todo)  # [n_todo, n_fragments, length]
        else:
            if activations.shape[:1] != (len(features),) or activations.shape[1] != fragments.n:
                raise ValueError(
                    f"activations have shape {activations.shape}; expected [{len(features)}, "
                    f"{fragments.n}, {fragments.length}] (one row per requested feature)"
                )
            acts = activations[[list(features).index(f) for f in todo]]
        last_save = time.time()
        try:
            for i, feature in enumerate(todo):
                done[feature] = asdict(score_feature(feature, acts[i], fragments, explainer, simulator, cfg))
                if time.time() - last_save > save_every_s:
                    atomic_write_json(path, list(done.values()))
                    last_save = time.time()
        finally:  # keep what was computed, whatever stopped the loop
            atomic_write_json(path, list(done.values()))
    return pd.DataFrame([done[f] for f in features])


def summarize(scores: pd.DataFrame) -> dict[str, object]:
    """Mean and 95% CI (mean +- 1.96 SE, as the paper's error bars) of each score, plus counts."""
    out: dict[str, object] = {"n": len(scores), "never_fires": int((scores["status"] == "never fires").sum())}
    for col in SCORE_COLUMNS:
        est = mean_se(scores[col].to_numpy(dtype=float))
        lo, hi = est.ci95
        out.update({col: est.mean, f"{col}_lo": lo, f"{col}_hi": hi})
    return out
