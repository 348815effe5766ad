"""Linear concept erasure at one residual hook: LEACE, class-mean-difference projection, projecting out SAE features,
and a random-feature control (Cunningham et al. 2023, arXiv 2309.08600v1, and the `erasure.py` of its code release).

Protocol, as in the paper's code:

* **Fitting data**: activations of the few-shot gender-classification prompts at every position of the *query*
  sentence from the name onward (the paper's ``skip_tokens`` drops the few-shot examples and " My name is"); each
  position is labelled with the prompt's class (0 = male, 1 = female). Here only training names are used.
* **Edit**: the eraser is applied to the same positions (the name onward) of every evaluated prompt, at one hook.
* **Score**: probability of the correct class token with the softmax restricted to the two class tokens.
* **Feature choice**: among SAE features active on more than ``min_frequency`` of the fitting positions (the
  paper's ``filter_activation_threshold`` counts them on the erasure prompts, not on corpus text), the one(s) whose
  decoder direction has the largest cosine with the class-mean difference. Projecting out a direction does not
  depend on its sign, so features are ranked by |cosine| (the paper ranked by signed cosine, female minus male).

Every eraser remembers its hook and refuses to edit another one. ``erasure_verdicts`` holds the rules that decide
notebook 04's verdicts from what it measured (``ErasureResults``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from concept_erasure import LeaceEraser

from saelib.core.stats import Estimate, cluster_bootstrap, mean_se
from saelib.core.verdicts import Verdict, by_count
from saelib.dictionaries.metrics import kept_positions
from saelib.model.hooks import layer_of
from saelib.model.lens import logit_lens, top_tokens
from saelib.model.loader import model_device
from saelib.text.names import GENDERS, single_token_names, split_names_by_gender
from saelib.text.tasks import (
    PRONOUN_TEMPLATES,
    gender_class_token_ids,
    make_gender_class_prompts,
    make_pronoun_prompts,
    pronoun_token_ids,
)

# ------------------------------------------------------------------------------------------------ names


def split_single_token_names(
    tokenizer,
    names_by_gender: Mapping[str, Sequence[str]],
    n_per_gender: int,
    test_fraction: float,
    min_train: int = 1,
    seed: int = 0,
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Keep the first ``n_per_gender`` single-token names of each gender (input order, e.g. by frequency) and split
    them by name into (train, test), stratified and balanced.

    Raises ValueError with the counts if a gender has fewer than ``n_per_gender`` single-token names, or if the
    split leaves fewer than ``min_train`` training or no test names per gender."""
    missing = set(GENDERS) - set(names_by_gender)
    if missing:
        raise ValueError(f"names_by_gender needs both {GENDERS}; missing {sorted(missing)}")
    single = {g: single_token_names(tokenizer, list(dict.fromkeys(names_by_gender[g]))) for g in GENDERS}
    counts = {g: f"{len(single[g])} single-token of {len(set(names_by_gender[g]))}" for g in GENDERS}
    if min(len(v) for v in single.values()) < n_per_gender:
        raise ValueError(
            f"Too few single-token names for the split: need {n_per_gender} per gender, have {counts}. "
            "Lower n_per_gender or give a longer name list."
        )
    n_test = round(n_per_gender * test_fraction)
    if n_test < 1 or n_per_gender - n_test < min_train:
        raise ValueError(
            f"Too few single-token names for the split: {n_per_gender} per gender with test_fraction="
            f"{test_fraction} gives {n_per_gender - n_test} train (need >= {min_train}) and {n_test} "
            f"test (need >= 1) names per gender; available: {counts}."
        )
    return split_names_by_gender({g: single[g][:n_per_gender] for g in GENDERS}, test_fraction, seed)


# ---------------------------------------------------------------------------------------------- prompts

EDIT_SCOPES = ("query", "all")  # where an eraser edits a prompt: where it was fitted, or every position but the first


@dataclass
class PromptSet:
    """Tokenised prompts of one task. ``tokens`` [n, max_len] right-padded with 0; ``lengths`` [n];
    ``starts`` [n] the position of the name (edits cover ``starts <= pos < lengths``); ``labels`` [n] (0 male,
    1 female); ``answer_ids`` [2] the (male, female) answer tokens."""

    task: str
    texts: list[str]
    names: list[str]
    tokens: torch.Tensor
    lengths: torch.Tensor
    starts: torch.Tensor
    labels: torch.Tensor
    answer_ids: torch.Tensor

    def __len__(self) -> int:
        return len(self.texts)

    def edit_mask(self, scope: str = "query") -> torch.Tensor:
        """[n, max_len] bool: the positions an eraser edits. ``"query"``: the name to the end, where the erasers are
        fitted; ``"all"``: every position but the first (which the dictionaries never train on) to the end."""
        pos = torch.arange(self.tokens.shape[1])
        if scope not in EDIT_SCOPES:
            raise ValueError(f"scope must be one of {EDIT_SCOPES}, got {scope!r}")
        first = self.starts[:, None] if scope == "query" else torch.ones(len(self), 1, dtype=torch.long)
        return (pos >= first) & (pos < self.lengths[:, None])


def _tokenise(tokenizer, task: str, prompts, answer_ids: Mapping[str, int]) -> PromptSet:
    ids = [tokenizer.encode(p.text, add_special_tokens=False) for p in prompts]
    lengths = torch.tensor([len(x) for x in ids])
    tokens = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
    starts = []
    for i, (x, p) in enumerate(zip(ids, prompts)):
        tokens[i, : len(x)] = torch.tensor(x)
        name_id = tokenizer.encode(" " + p.name, add_special_tokens=False)[0]
        where = [j for j, t in enumerate(x) if t == name_id]
        if not where:
            raise ValueError(f"name {p.name!r} not found as a token in {p.text!r}")
        starts.append(where[-1])  # the query name is the last name (shot names never equal it)
    labels = torch.tensor([GENDERS.index(p.gender) for p in prompts])
    return PromptSet(
        task,
        [p.text for p in prompts],
        [p.name for p in prompts],
        tokens,
        lengths,
        torch.tensor(starts),
        labels,
        torch.tensor([answer_ids[g] for g in GENDERS]),
    )


def class_prompts(
    tokenizer,
    names_by_gender: Mapping[str, Sequence[str]],
    shot_names: Mapping[str, Sequence[str]],
    n_shots: int,
    seed: int = 0,
    prompts_per_name: int = 1,
) -> PromptSet:
    """Few-shot " My name is X and I am a male/female." prompts, ``prompts_per_name`` per query name (each with its
    own draw of shots from ``shot_names``: seeds ``seed``, ``seed + 1``, ...)."""
    if prompts_per_name < 1:
        raise ValueError(f"prompts_per_name must be >= 1, got {prompts_per_name}")
    prompts = [
        p
        for i in range(prompts_per_name)
        for p in make_gender_class_prompts(
            tokenizer, names_by_gender, n_shots=n_shots, seed=seed + i, shot_names_by_gender=shot_names
        )
    ]
    return _tokenise(tokenizer, "class", prompts, gender_class_token_ids(tokenizer))


def pronoun_prompts(
    tokenizer, names_by_gender: Mapping[str, Sequence[str]], n_templates: int, seed: int = 0
) -> PromptSet:
    """ "... X went to the store, and" -> " he"/" she" prompts: every name with the first ``n_templates`` templates."""
    prompts = make_pronoun_prompts(tokenizer, names_by_gender, templates=PRONOUN_TEMPLATES[:n_templates], seed=seed)
    return _tokenise(tokenizer, "pronoun", prompts, pronoun_token_ids(tokenizer))


# ----------------------------------------------------------------------------------------------- erasers


class EraserHookError(ValueError):
    """An eraser was applied at a hook other than the one it was fitted at."""


@dataclass
class Eraser:
    """An affine edit of activations [..., d] fitted at ``hook``. Subclasses implement ``transform``."""

    method: str
    hook: str

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, hook: str) -> torch.Tensor:
        """``transform(x)`` after checking that ``hook`` is the hook this eraser was fitted at."""
        if hook != self.hook:
            raise EraserHookError(
                f"{self.method} eraser was fitted at {self.hook!r} and cannot be applied at "
                f"{hook!r}; fit one at {hook!r} instead."
            )
        return self.transform(x)


@dataclass
class ProjectionEraser(Eraser):
    """Orthogonal projection onto the complement of span(directions): x - Q Qᵀ x, Q [d, k] orthonormal."""

    directions: torch.Tensor | None = field(repr=False, default=None)  # [k, d], any norm (required)
    features: tuple[int, ...] = ()  # SAE feature indices the directions came from, if any

    def __post_init__(self) -> None:
        if self.directions is None:
            raise ValueError(f"{self.method} eraser: a projection eraser needs the directions [k, d] it removes")
        q, _ = torch.linalg.qr(self.directions.T.double())  # [d, k]
        self._q = q.float()

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        q = self._q.to(x.device)
        return x - (x.float() @ q @ q.T).to(x.dtype)


@dataclass
class LeaceConceptEraser(Eraser):
    """LEACE (Belrose et al. 2023): the least-squares affine edit after which no linear classifier beats a constant
    on the fitting data. Wraps ``concept_erasure.LeaceEraser``."""

    eraser: LeaceEraser = field(repr=False, default=None)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        e = self.eraser
        if e.proj_left.device != x.device:  # follow the activations (e.g. fitted on CPU, applied on a GPU)
            bias = None if e.bias is None else e.bias.to(x.device)
            self.eraser = e = LeaceEraser(e.proj_left.to(x.device), e.proj_right.to(x.device), bias)
        return e(x.float()).to(x.dtype)


@dataclass
class ComposedEraser(Eraser):
    """Several erasers fitted at the same hook, applied in order. A planted positive control for dominance:
    LEACE followed by the projection out of a high-variance direction keeps LEACE's guarantee (a linear map of
    equal class means leaves them equal) and disrupts the model more than LEACE alone, so LEACE should dominate it."""

    parts: tuple[Eraser, ...] = ()

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError(f"{self.method} eraser: a composed eraser needs at least one part")
        wrong = [e.method for e in self.parts if e.hook != self.hook]
        if wrong:
            raise EraserHookError(f"{self.method}: parts {wrong} were fitted at another hook than {self.hook!r}")

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        for part in self.parts:
            x = part.transform(x)
        return x


def check_labels(x: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise ValueError unless ``labels`` [n] are 0/1 codes for the n rows of ``x`` [n, d] with both classes present."""
    if x.ndim != 2 or labels.ndim != 1 or len(x) != len(labels):
        raise ValueError(f"expected activations [n, d] and labels [n]; got {tuple(x.shape)} and {tuple(labels.shape)}")
    values = set(torch.unique(labels).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"labels must be class codes 0 (male) / 1 (female); got values {sorted(values)}")
    if len(values) < 2:
        raise ValueError(
            f"all {len(labels)} labels are class {values.pop() if values else None}: erasing a concept "
            "needs examples of both classes (check the name split and the label column)."
        )


def mean_difference(x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[d] mean of class 1 minus mean of class 0."""
    check_labels(x, labels)
    x = x.float()
    return x[labels == 1].mean(0) - x[labels == 0].mean(0)


def fit_leace(x: torch.Tensor, labels: torch.Tensor, hook: str) -> LeaceConceptEraser:
    check_labels(x, labels)
    return LeaceConceptEraser("LEACE", hook, LeaceEraser.fit(x.float(), labels.long()))


def fit_mean_difference(x: torch.Tensor, labels: torch.Tensor, hook: str) -> ProjectionEraser:
    return ProjectionEraser("mean difference", hook, mean_difference(x, labels)[None])


def _decoder(sae) -> torch.Tensor:
    """[n_features, d] unit decoder directions of a one-member SAE, in raw activation space."""
    with torch.no_grad():
        d = sae.dictionary()
        d = d[0] if d.ndim == 3 else d
        return F.normalize(d.float(), dim=-1)


def rank_features(sae, x: torch.Tensor, labels: torch.Tensor, min_frequency: float = 0.01) -> pd.DataFrame:
    """Features active on more than ``min_frequency`` of the rows of ``x`` [n, d], ranked by |cosine| between their
    decoder direction and the class-mean difference. Columns: feature, cosine, abs_cosine, frequency,
    mean_male, mean_female (mean activation per class)."""
    diff = mean_difference(x, labels)
    with torch.no_grad():
        codes = sae.encode(x.float())  # [n, n_features]
    freq = (codes > 0).float().mean(0)
    cos = _decoder(sae) @ F.normalize(diff, dim=0)
    keep = torch.nonzero(freq > min_frequency)[:, 0]
    if len(keep) == 0:
        raise ValueError(f"no SAE feature is active on more than {min_frequency:.1%} of the {len(x)} fitting rows")
    df = pd.DataFrame(
        {
            "feature": keep.numpy(),
            "cosine": cos[keep].numpy(),
            "frequency": freq[keep].numpy(),
            "mean_male": codes[labels == 0][:, keep].mean(0).numpy(),
            "mean_female": codes[labels == 1][:, keep].mean(0).numpy(),
        }
    )
    df["abs_cosine"] = df.cosine.abs()
    return df.sort_values("abs_cosine", ascending=False, kind="stable").reset_index(drop=True)


def fit_sae_features(
    sae,
    x: torch.Tensor,
    labels: torch.Tensor,
    hook: str,
    k: int = 1,
    min_frequency: float = 0.01,
    ranking: pd.DataFrame | None = None,
) -> ProjectionEraser:
    """Project out the decoder directions of the ``k`` features ranked first by ``rank_features``."""
    ranking = rank_features(sae, x, labels, min_frequency) if ranking is None else ranking
    chosen = tuple(int(f) for f in ranking.feature[:k])
    return ProjectionEraser(f"SAE top-{k}", hook, _decoder(sae)[list(chosen)], chosen)


def fit_random_features(sae, ranking: pd.DataFrame, hook: str, k: int = 1, seed: int = 0) -> ProjectionEraser:
    """Control: project out ``k`` features drawn at random (``seed``) from the same frequency-filtered candidates
    (``ranking``), excluding the top-``k`` ones."""
    pool = [int(f) for f in ranking.feature[k:]]
    if len(pool) < k:
        raise ValueError(f"only {len(pool)} candidate features left for a random control of size {k}")
    chosen = tuple(random.Random(seed).sample(pool, k))
    return ProjectionEraser(f"random top-{k}", hook, _decoder(sae)[list(chosen)], chosen)


def fit_best_aligned(
    name: str, directions: torch.Tensor, x: torch.Tensor, labels: torch.Tensor, hook: str, k: int = 1
) -> ProjectionEraser:
    """Control with the SAE's selection advantage: project out the ``k`` of ``directions`` [n, d] (random, PCA or ICA
    directions) with the largest |cosine| with the class-mean difference of the fitting rows, the rule that picks
    the SAE's features. Named ``best {name} top-{k}``."""
    if directions.ndim != 2 or directions.shape[1] != x.shape[1]:
        raise ValueError(f"{name} directions must be [n, {x.shape[1]}], got {tuple(directions.shape)}")
    if len(directions) < k:
        raise ValueError(f"only {len(directions)} {name} directions for a control of size {k}")
    cos = F.normalize(directions.float(), dim=-1) @ F.normalize(mean_difference(x, labels), dim=0)
    chosen = cos.abs().argsort(descending=True, stable=True)[:k]
    return ProjectionEraser(f"best {name} top-{k}", hook, directions[chosen].float(), tuple(chosen.tolist()))


def fit_erasers(
    x: torch.Tensor,
    labels: torch.Tensor,
    hook: str,
    sae,
    ks: Sequence[int] = (1,),
    min_frequency: float = 0.01,
    seed: int = 0,
    controls: Mapping[str, torch.Tensor] | None = None,
    control_ks: Sequence[int] | None = None,
) -> tuple[dict[str, Eraser], pd.DataFrame]:
    """Every method fitted on the same rows: ({method name: eraser}, the SAE feature ranking). ``controls``
    ({name: directions [n, d]}, e.g. as many random directions as the SAE has features, PCA and ICA directions)
    add a ``best {name} top-{k}`` eraser for each k in ``control_ks`` (default: every k; ``fit_best_aligned``)."""
    check_labels(x, labels)
    if sae.cfg.hook != hook:
        raise EraserHookError(f"the SAE was trained at {sae.cfg.hook!r}, not at {hook!r}")
    ranking = rank_features(sae, x, labels, min_frequency)
    erasers: dict[str, Eraser] = {
        "LEACE": fit_leace(x, labels, hook),
        "mean difference": fit_mean_difference(x, labels, hook),
    }
    for k in ks:
        erasers[f"SAE top-{k}"] = fit_sae_features(sae, x, labels, hook, k, ranking=ranking)
        erasers[f"random top-{k}"] = fit_random_features(sae, ranking, hook, k, seed=seed + k)
        for name, directions in (controls or {}).items() if control_ks is None or k in control_ks else ():
            erasers[f"best {name} top-{k}"] = fit_best_aligned(name, directions, x, labels, hook, k)
    return erasers, ranking


def probe_accuracy(
    x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, seed: int = 0
) -> float:
    """Held-out accuracy of ``probe_correct``'s probe."""
    return float(probe_correct(x_train, y_train, x_test, y_test, seed).mean())


def probe_correct(
    x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, seed: int = 0
) -> np.ndarray:
    """Per held-out row, whether a logistic-regression probe (standardised inputs) fitted on the training rows
    classifies it correctly; chance is 0.5 on balanced data.

    Newton's method on the full Hessian (d = 576 in notebook 04): it reaches the regularised optimum in under ten
    steps, where lbfgs took 200-300, or stopped at iteration 0 when a mean-difference projection left no gradient at
    the start: 4.5x faster on notebook 04's 45 probes. Accuracies there agree with lbfgs's within two of 150 test
    rows, except after the mean-difference projection (lbfgs 0.50 without training; the optimum 0.40-0.50)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(
        StandardScaler(), LogisticRegression(solver="newton-cholesky", max_iter=200, random_state=seed)
    )
    probe.fit(x_train.float().numpy(), y_train.numpy())
    return probe.predict(x_test.float().numpy()) == y_test.numpy()


# ----------------------------------------------------------------------------------------- with the model


@torch.inference_mode()
def harvest_fit_activations(
    model,
    prompts: PromptSet,
    hooks: Sequence[str],
    batch_size: int = 16,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """One pass (stopping after the deepest hook) collecting every hook's activations at the edited positions.

    Returns ({hook: [n_rows, d]}, labels [n_rows], prompt index [n_rows]); rows run over prompts, then positions."""
    from saelib.model.hooks import stop_layer

    out: dict[str, list[torch.Tensor]] = {h: [] for h in hooks}
    mask = prompts.edit_mask()
    for i in range(0, len(prompts), batch_size):
        sl = slice(i, i + batch_size)
        _, cache = model.run_with_cache(
            prompts.tokens[sl].to(model_device(model)), names_filter=list(hooks), stop_at_layer=stop_layer(list(hooks))
        )
        for h in hooks:
            out[h].append(cache[h][mask[sl].to(cache[h].device)].float().cpu())
    rows_per_prompt = mask.sum(1)
    labels = prompts.labels.repeat_interleave(rows_per_prompt)
    index = torch.arange(len(prompts)).repeat_interleave(rows_per_prompt)
    return {h: torch.cat(v) for h, v in out.items()}, labels, index


@torch.inference_mode()
def clean_residuals(model, tokens: torch.Tensor, hooks: Sequence[str], batch_size: int = 16) -> dict[str, torch.Tensor]:
    """{hook: [n, pos, d]} unedited residuals of ``tokens`` at each ``blocks.N.hook_resid_post`` (one pass stopping
    after the deepest). Given to ``task_scores`` / ``disruption`` as ``resid``, an eraser's edit then runs only the
    blocks after its layer: the same numbers (up to float rounding) for about half the compute over layers 2-26."""
    from saelib.model.forward import collect_activations

    for h in hooks:
        _resid_layer(h)
    return collect_activations(model, tokens, hooks, batch_size)[0]  # on the CPU, as every analysis result


def _resid_layer(hook: str) -> int:
    from saelib.model.hooks import is_resid_post, layer_of

    if not is_resid_post(hook):
        raise ValueError(
            f"running from a cached residual needs a blocks.N.hook_resid_post hook, got {hook!r}; "
            "leave resid=None to edit other hooks with a full forward pass"
        )
    return layer_of(hook)


def _check_resid(resid: torch.Tensor, tokens: torch.Tensor) -> None:
    if resid.shape[:2] != tokens.shape:
        raise ValueError(
            f"resid has shape {tuple(resid.shape)} but the tokens are {tuple(tokens.shape)}: pass "
            "clean_residuals(model, tokens, [hook])[hook] for the same tokens"
        )


def _edit_hook(eraser: Eraser, hook_name: str, mask: torch.Tensor, norms: list[torch.Tensor]):
    """A forward hook for ``hook_name`` that applies ``eraser`` at ``mask`` [b, pos] and records the per-position
    edit norm. (TransformerBridge passes its canonical hook point, e.g. ``blocks.8.hook_out``, so the name the hook
    is registered under is checked, not ``hook.name``.)"""

    def edit(act, hook=None):  # noqa: ARG001
        new = eraser.apply(act, hook_name)
        norms.append((new - act).norm(dim=-1) * mask)
        return torch.where(mask[..., None], new, act)

    return edit


@torch.inference_mode()
def task_scores(
    model,
    prompts: PromptSet,
    eraser: Eraser | None = None,
    hook: str | None = None,
    batch_size: int = 16,
    resid: torch.Tensor | None = None,
    scope: str = "query",
) -> dict[str, np.ndarray]:
    """Per prompt: ``p_correct`` (two-way probability of the right class token) and ``edit_norm`` (mean L2 norm of
    the edit over the edited positions; 0 without an eraser). The eraser edits ``hook`` (default: its own; any
    other is rejected) at the positions ``scope`` names (``PromptSet.edit_mask``: the name onward, where erasers
    are fitted, or every position but the first). ``resid``: the prompts' clean residual at ``hook``
    (``clean_residuals``), so only the blocks after it run."""
    from saelib.experiments.patching import final_logits_from

    hook = eraser.hook if hook is None and eraser is not None else hook
    dev = model_device(model)
    mask = prompts.edit_mask(scope).to(dev)
    if resid is not None:
        if eraser is None:
            raise ValueError("resid is for running an eraser's edit from its layer; without an eraser leave it out")
        _check_resid(resid, prompts.tokens)
    p, norms = [], []
    for i in range(0, len(prompts), batch_size):
        sl = slice(i, i + batch_size)
        batch_norms: list[torch.Tensor] = []
        if resid is None:
            # with an eraser, hook is its own unless given
            hooks = [] if eraser is None else [(hook, _edit_hook(eraser, cast(str, hook), mask[sl], batch_norms))]
            logits = model.run_with_hooks(prompts.tokens[sl].to(dev), fwd_hooks=hooks)
            last = logits[torch.arange(len(logits)), prompts.lengths[sl] - 1].float().cpu()
        else:
            # resid comes with an eraser (checked above), which gives hook
            edited_at, by = cast(str, hook), cast(Eraser, eraser)
            x = _edit_hook(by, edited_at, mask[sl], batch_norms)(resid[sl].to(dev))
            last = final_logits_from(model, x, _resid_layer(edited_at), prompts.lengths[sl].to(dev)).float().cpu()
        two = last[:, prompts.answer_ids].log_softmax(-1)
        p.append(two.gather(1, prompts.labels[sl, None])[:, 0].exp())
        n = (batch_norms[0].sum(1) / mask[sl].sum(1)).cpu() if batch_norms else torch.zeros(len(last))
        norms.append(n)
    return {"p_correct": torch.cat(p).numpy(), "edit_norm": torch.cat(norms).numpy()}


@torch.inference_mode()
def clean_log_probs(model, tokens: torch.Tensor, batch_size: int = 4) -> torch.Tensor:
    """[n, pos, vocab] next-token log-probabilities of the unedited model (computed once, reused per eraser)."""
    return torch.cat([model(b.to(model_device(model))).float().log_softmax(-1).cpu() for b in tokens.split(batch_size)])


@torch.inference_mode()
def disruption(
    model,
    tokens: torch.Tensor,
    eraser: Eraser,
    clean_logp: torch.Tensor,
    separator_id: int,
    hook: str | None = None,
    batch_size: int = 4,
    resid: torch.Tensor | None = None,
) -> dict[str, Any]:
    """The eraser applied to corpus text ``tokens`` [n, pos] at every kept position: mean increase in next-token
    cross-entropy and mean KL(clean ‖ edited) over all next-token predictions (nats), and the edit's mean L2 norm
    and its norm relative to the activation's, over edited positions; 95% t intervals for the CE increase and KL
    over contexts (each context's mean is one observation: positions within a context are not independent), and
    ``kl_per_context`` [n] (np.ndarray) for paired comparisons between erasers on the same contexts.
    ``resid``: the clean residual of ``tokens`` at the hook (``clean_residuals``), so only later blocks run."""
    from saelib.model.forward import run_blocks

    hook_name = eraser.hook if hook is None else hook
    if resid is not None:
        _check_resid(resid, tokens)
    dev = model_device(model)
    keep = kept_positions(tokens, separator_id).to(dev)
    ce_clean, ce_edit, kls, norms, rel = [], [], [], [], []
    for i in range(0, len(tokens), batch_size):
        sl = slice(i, i + batch_size)
        batch, m = tokens[sl].to(dev), keep[sl]

        def edit(act, hook=None):  # noqa: ARG001 (checked against the registered name, see _edit_hook)
            new = eraser.apply(act, hook_name)
            delta = (new - act).norm(dim=-1)
            norms.append(delta[m])
            rel.append(delta[m] / act.norm(dim=-1)[m])
            return torch.where(m[..., None], new, act)

        if resid is None:
            logits = model.run_with_hooks(batch, fwd_hooks=[(hook_name, edit)])
        else:
            edited = run_blocks(model, edit(resid[sl].to(dev)), _resid_layer(hook_name))
            logits = model.unembed(model.ln_final(edited))
        logp = logits.float().log_softmax(-1)[:, :-1].cpu()
        clean = clean_logp[sl][:, :-1]
        target = tokens[sl][:, 1:, None]
        ce_edit.append(-logp.gather(-1, target).flatten())
        ce_clean.append(-clean.gather(-1, target).flatten())
        kls.append((clean.exp() * (clean - logp)).sum(-1).flatten())
    ce_c, ce_e = torch.cat(ce_clean), torch.cat(ce_edit)
    n_ctx, per = len(tokens), tokens.shape[1] - 1  # contexts are the independent units: intervals over them
    ce_ctx = (ce_e - ce_c).reshape(n_ctx, per).mean(1).numpy()
    kl_ctx = torch.cat(kls).reshape(n_ctx, per).mean(1).numpy()
    ce_est, kl_est = mean_se(ce_ctx), mean_se(kl_ctx)
    return {
        "ce_clean": ce_c.mean().item(),
        "ce_increase": (ce_e - ce_c).mean().item(),
        "ce_increase_lo": ce_est.lo,
        "ce_increase_hi": ce_est.hi,
        "kl": torch.cat(kls).mean().item(),
        "kl_lo": kl_est.lo,
        "kl_hi": kl_est.hi,
        "edit_norm": torch.cat(norms).mean().item(),
        "edit_norm_relative": torch.cat(rel).mean().item(),
        "contexts": n_ctx,
        "kl_per_context": kl_ctx,
    }


# ------------------------------------------------------------------------------------------ comparisons


def erasure_difference(after_a: np.ndarray, after_b: np.ndarray, names: Sequence[str], seed: int = 0) -> Estimate:
    """Erasure of method a minus erasure of method b on the same prompts (erasure = baseline score − score after;
    the baseline cancels, so this is ``after_b − after_a``), with a bootstrap interval clustered by the prompt's
    name: prompts built on one name (its templates, its shot draws) are one unit."""
    return cluster_bootstrap(np.asarray(after_b) - np.asarray(after_a), list(names), seed=seed)


def kl_difference(kl_a: np.ndarray, kl_b: np.ndarray) -> Estimate:
    """KL of method a minus KL of method b, paired per corpus context (``disruption``'s ``kl_per_context``): each
    context is one unit, a t interval over contexts."""
    return mean_se(np.asarray(kl_a) - np.asarray(kl_b))


def dominance(erasure_diff: Estimate, kl_diff: Estimate, a: str, b: str) -> str:
    """Which of two erasers dominates, decided with intervals. On each axis a is *better* when the 95% interval
    of the difference excludes 0 in a's favour (more erasure, ``erasure_diff`` > 0; less KL, ``kl_diff`` < 0),
    *worse* when it excludes 0 the other way, and tied otherwise. ``"{a} dominates"``: better on one axis and worse
    on none (and the mirror for b); ``"trade-off"``: each better on one axis; ``"undecided"``: tied on both."""
    erase = 1 if erasure_diff.above(0) else (-1 if erasure_diff.below(0) else 0)
    kl = 1 if kl_diff.below(0) else (-1 if kl_diff.above(0) else 0)
    if erase >= 0 and kl >= 0 and erase + kl > 0:
        return f"{a} dominates"
    if erase <= 0 and kl <= 0 and erase + kl < 0:
        return f"{b} dominates"
    return "trade-off" if erase * kl < 0 else "undecided"


def logit_effects(model, direction: torch.Tensor, hook: str, k: int = 8) -> dict[str, list[str]]:
    """Top boosted and suppressed next tokens of adding ``direction`` [d] at residual ``hook``, direct path only
    (``saelib.model.lens``)."""
    effect = logit_lens(model, hook)(direction[None])[0]
    return {
        ("boosted" if key == "boosts" else "suppressed"): [t for t, _ in rows]
        for key, rows in top_tokens(model.tokenizer, effect, k).items()
    }


# --------------------------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class ErasureResults:
    """What notebook 04 measures, as ``erasure_verdicts`` reads it. Methods are named as ``fit_erasers`` names them
    ("LEACE", "mean difference", "SAE top-k", "random top-k", "best {pool} top-k"), plus "LEACE + top PC"; tasks
    are "class" and "pronoun" (the verdicts read the pronoun task); scopes are ``EDIT_SCOPES``."""

    hooks: Sequence[str]  # the residual hooks tested, one per layer, in layer order
    controls: Mapping[str, Collection[str]]  # hook -> its best-aligned control pools (only the names are read)
    k1: int  # the smallest number of features projected out: the size the controls are fitted at and judged
    baseline: Mapping[str, Mapping[str, np.ndarray]]  # task -> ``task_scores`` of the unedited model on its prompts
    per_prompt: Mapping[tuple[str, str, str, str], np.ndarray]  # (hook, method, task, scope) -> p_correct per prompt
    prompt_names: Mapping[str, Sequence[str]]  # task -> the name each held-out prompt is built on (the cluster)
    per_context: Mapping[tuple[str, str], np.ndarray]  # (hook, method) -> KL from the unedited model per context
    probe_before: Mapping[str, np.ndarray]  # hook -> per held-out row, whether the probe on unedited rows is right
    probe_rows: Mapping[
        tuple[str, str], np.ndarray
    ]  # (hook, method) -> the same, probe fitted and scored on erased rows
    probe_row_names: Sequence[str]  # the name of each held-out probe row (the cluster)
    top_cos2: Mapping[int, float]  # layer -> cos² of the top SAE feature's direction with the class-mean difference
    seed: int  # the bootstrap seed (the profile's)

    def erasure_diff(self, hook: str, a: str, b: str, task: str = "pronoun") -> Estimate:
        """Erasure of a minus erasure of b (positive: a erases more), clustered by name."""
        return erasure_difference(
            self.per_prompt[(hook, a, task, "query")],
            self.per_prompt[(hook, b, task, "query")],
            self.prompt_names[task],
            seed=self.seed,
        )

    def erasure(self, hook: str, method: str, task: str = "pronoun", scope: str = "query") -> Estimate:
        """Erasure (baseline score − score after the edit) of ``method``, clustered by name."""
        return cluster_bootstrap(
            self.baseline[task]["p_correct"] - self.per_prompt[(hook, method, task, scope)],
            list(self.prompt_names[task]),
            seed=self.seed,
        )

    def versus(self, hook: str, a: str, b: str, task: str = "pronoun") -> str:
        """``dominance`` of a against b: erasure clustered by name, KL paired per corpus context."""
        return dominance(
            self.erasure_diff(hook, a, b, task),
            kl_difference(self.per_context[(hook, a)], self.per_context[(hook, b)]),
            a,
            b,
        )

    def beats_controls(self, hook: str, method: str, task: str = "pronoun") -> bool:
        """Whether ``method`` erases more than every best-aligned control of its size (interval above 0)."""
        k = method.rsplit("-", 1)[1]
        return all(self.erasure_diff(hook, method, f"best {c} top-{k}", task).above(0) for c in self.controls[hook])

    def probe_estimate(self, hook: str, method: str | None = None) -> Estimate:
        """Held-out probe accuracy after ``method`` (before erasure when None), clustered by name."""
        rows = self.probe_before[hook] if method is None else self.probe_rows[(hook, method)]
        return cluster_bootstrap(rows.astype(float), list(self.probe_row_names), seed=self.seed)


def _layers(hs: Sequence[str]) -> str:
    return ", ".join(str(layer_of(h)) for h in hs) or "none"


def _per_layer(hooks: Sequence[str], fn: Callable[[str], str]) -> str:
    return "; ".join(f"L{layer_of(h)}: {fn(h)}" for h in hooks)


def erasure_verdicts(results: ErasureResults) -> list[Verdict]:
    """Notebook 04's verdicts on three claims of the arXiv v1 erasure experiment (Cunningham et al. 2023), each
    decided per layer on the held-out names of the pronoun task at the smallest feature count ``k1``:

    1. projecting out the top SAE feature erases more than the best-aligned random, PCA and ICA directions;
    2. one SAE feature dominates LEACE (erasure against KL on corpus text, ``dominance``);
    3. LEACE brings the held-out probe to chance (upper end of its interval at most 0.65).

    For each claim: the layers where its precondition holds; of those, the layers where the negative control passes
    the rule are left out (there the rule cannot separate a real effect from a control), so "testable" = the
    precondition holds and the negative control fails; the verdict counts the testable layers where the claim passes
    (``by_count``: none testable gives "not testable here"), and the positive control is reported beside it."""
    r = results
    hooks, controls, k1 = r.hooks, r.controls, r.k1
    erasure, erasure_diff, versus = r.erasure, r.erasure_diff, r.versus
    beats_controls, probe_estimate = r.beats_controls, r.probe_estimate

    sae1, rnd1 = f"SAE top-{k1}", f"random top-{k1}"
    best_random = f"best random top-{k1}"
    # Each claim: the layers where the precondition holds; of those, the layers where the negative control passes
    # the rule (there the rule cannot separate a real effect from a control, so they are left out: "testable" =
    # precondition holds and the negative control fails); the layers where the claim passes; and the positive control.
    # claim 1: the top SAE feature erases more than every best-aligned control (random, PCA, ICA)
    ready1 = [h for h in hooks if erasure(h, "mean difference").above(0)]
    neg1 = [h for h in ready1 if beats_controls(h, rnd1)]
    testable1 = [h for h in ready1 if h not in neg1]
    sae_wins = [h for h in testable1 if beats_controls(h, sae1)]
    pos1 = [
        h for h in testable1 if all(erasure_diff(h, "mean difference", f"best {c} top-1").above(0) for c in controls[h])
    ]
    # claim 2: one SAE feature dominates LEACE (decided with intervals)
    ready2 = [h for h in hooks if erasure(h, "LEACE").above(0)]
    neg2 = [h for h in ready2 if versus(h, best_random, "LEACE").startswith("best")]
    testable2 = [h for h in ready2 if h not in neg2]
    dominance2 = {h: versus(h, sae1, "LEACE") for h in testable2}
    sae_dominates = [h for h, v in dominance2.items() if v.startswith("SAE")]
    pos2 = [h for h in testable2 if versus(h, "LEACE", "LEACE + top PC") == "LEACE dominates"]
    # claim 3: LEACE brings the held-out probe to chance
    ready3 = [h for h in hooks if probe_estimate(h).lo >= 0.75]
    neg3 = [h for h in ready3 if probe_estimate(h, best_random).hi <= 0.65]
    testable3 = [h for h in ready3 if h not in neg3]
    at_chance = [h for h in testable3 if probe_estimate(h, "LEACE").hi <= 0.65]
    pos3 = [h for h in testable3 if probe_estimate(h, "mean difference").hi <= 0.65]

    return [
        Verdict(
            "projecting out the top SAE feature erases more gender information than controls",
            "v1: SAE-feature curve below the random-feature control",
            "pronoun erasure, SAE top-1 minus the best-aligned random / PCA / ICA direction: "
            + _per_layer(
                hooks,
                lambda h: " / ".join(f"{erasure_diff(h, sae1, f'best {c} top-1').mean:+.3f}" for c in controls[h]),
            ),
            by_count(len(sae_wins), len(testable1)),
            f"beats all three controls at layers {_layers(sae_wins)} of the testable {_layers(testable1)}; "
            f"negative control passes (layer left out) at {_layers(neg1)}; positive control passes at {_layers(pos1)}",
            rule="per layer, erasure (baseline − after) of the pronoun score by the top SAE feature minus that of "
            "the best-aligned random direction (of as many as the SAE has features), PCA direction and ICA "
            "direction, each chosen by the SAE's own rule (largest |cosine| with the class-mean difference of "
            "the fitting rows); a layer supports the claim when all three differences have 95% intervals "
            "above 0; reproduced at every testable layer, partly at some, not reproduced at none",
            precondition="at a layer, the mean-difference projection must erase (its erasure interval above 0); "
            "where even the ideal single direction erases nothing no feature can, and the layer is "
            "not testable; the baseline pronoun score must lie in [0.75, 1] (checked)",
            negative_control="a random SAE feature from the same candidates, put through the same rule, should "
            "beat the controls at no layer; a layer where it does is left out as undecidable",
            positive_control="the mean-difference direction itself, put through the same rule, should beat the "
            "controls at every testable layer",
            unit="held-out names: bootstrap over names of the paired per-prompt differences (each name's "
            "pronoun templates are one cluster); one SAE training seed, so no seed variance",
        ),
        Verdict(
            "one SAE feature erases as much as LEACE with no more disruption",
            "v1: single features compared with LEACE on erasure against edit size",
            "SAE top-1 against LEACE: " + _per_layer(hooks, lambda h: dominance2.get(h, "not testable")),
            by_count(len(sae_dominates), len(testable2)),
            f"SAE top-1 dominates at {_layers(sae_dominates)} of the testable {_layers(testable2)}; negative "
            f"control dominates (layer left out) at {_layers(neg2)}; positive control passes at {_layers(pos2)}; "
            "cos² of the top feature " + ", ".join(f"L{la} {v:.2f}" for la, v in r.top_cos2.items()),
            rule="per layer, E.dominance: SAE top-1 is better on an axis when the 95% interval of the difference "
            "excludes 0 in its favour (pronoun erasure, clustered by name; KL from the unedited model on "
            "corpus text, paired per context), worse when it excludes 0 the other way; it dominates LEACE "
            "when better on one axis and worse on none; reproduced at every testable layer, partly at some, "
            "not reproduced at none",
            precondition="at a layer, LEACE must erase (its erasure interval above 0), else the comparison is "
            "with a method that does nothing and the layer is not testable",
            negative_control="the best-aligned random direction, put through the same rule against LEACE, "
            "should dominate it at no layer; a layer where it does is left out as undecidable",
            positive_control="a planted dominance: LEACE against LEACE followed by projecting out the top PCA "
            "direction of corpus activations (the same guarantee, more disruption), by the same "
            "rule, should dominate at every testable layer",
            unit="held-out names for erasure (bootstrap over names), corpus contexts for KL (t interval); one "
            "SAE training seed, so no seed variance",
        ),
        Verdict(
            "LEACE removes the linearly decodable gender signal",
            "LEACE (Belrose et al.): probe at chance after erasure",
            "probe accuracy after LEACE: " + _per_layer(hooks, lambda h: str(probe_estimate(h, "LEACE"))),
            by_count(len(at_chance), len(testable3)),
            f"upper end of the interval ≤ 0.65 at layers {_layers(at_chance)} of the testable "
            f"{_layers(testable3)}; negative control passes (layer left out) at {_layers(neg3)}; positive control "
            f"passes at {_layers(pos3)}",
            rule="per layer, accuracy of a logistic probe fitted on LEACE-erased fitting rows and scored on erased "
            "held-out rows; a layer supports the claim when the upper end of its 95% interval is at most "
            "0.65 (within 0.15 of chance); reproduced at every testable layer, partly at some, not "
            "reproduced at none",
            precondition="at a layer, the probe must read gender before erasure: lower end of its interval at "
            "least 0.75, else the layer is not testable",
            negative_control="the best-aligned random direction's projection, by the same rule, should leave the "
            "probe above 0.65; a layer where it does not is left out as undecidable",
            positive_control="the mean-difference projection, which also equalises the class means of the "
            "fitting rows, by the same rule; it is not guaranteed to pass on held-out names",
            unit="held-out names: bootstrap over names of per-row correctness (a name's query positions are one "
            "cluster)",
        ),
    ]
