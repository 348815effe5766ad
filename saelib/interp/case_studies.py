"""Case studies of single features (Cunningham et al. 2023, section 5; Bricken et al. 2023's interval views).

A feature is found by rule, not by index: a *token proxy* (a predicate on the token's text, e.g. "begins with an
apostrophe") marks the rows it should fire on, and the feature whose activations best match it is chosen. Then:

- ``interval_table``: equal-width activation intervals over (0, max], with the proxy's precision in each (Wilson
  95% interval), the recall of thresholding at its lower edge, and the commonest token types (Bricken et al.);
- ``next_token_ablation``: subtract the feature's contribution at the positions where it fires, run the rest of
  the model, and measure how the next-token log-probabilities change, against a random direction of the same norm;
- ``upstream_effects`` / ``trace_circuit``: ablate features of an earlier residual layer and measure how much a
  later feature's activation falls (attribution ranks candidates, exact ablation measures them), traced back
  layer by layer into a graph, as the paper's closing-parenthesis circuit; each edge's effect is split into the
  direct residual path (the upstream contribution removed from the later layer's residual with no block rerun)
  and the path through the attention and MLP blocks in between (total minus direct).

Selection out of sample: ``row_documents`` labels each row of an activation store with the source document it
comes from, ``split_documents`` halves the documents, and ``proxy_f1_bootstrap`` scores directions chosen on one
half on the other, with intervals from a bootstrap that resamples documents (paired across directions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from saelib.core.stats import Estimate, cluster_bootstrap, mean_se, proportion
from saelib.interp.tokens import readable_tokens
from saelib.model.forward import collect_residuals, logits_from, run_blocks
from saelib.model.hooks import layer_of

if TYPE_CHECKING:
    from saelib.activations.store import ActivationStore
    from saelib.dictionaries.sae import SAE
    from saelib.text.corpus import Corpus

Tensor = torch.Tensor


@dataclass(frozen=True)
class TokenProxy:
    """A computational proxy for a feature: which tokens it should fire on, decided from the token's text alone."""

    name: str
    description: str
    predicate: Callable[[str], bool]

    def vocabulary_mask(self, tokenizer, ids: np.ndarray) -> dict[int, bool]:
        return {int(i): bool(self.predicate(tokenizer.decode([int(i)]))) for i in np.unique(ids)}

    def mask(self, tokenizer, ids: np.ndarray) -> np.ndarray:
        """Boolean array shaped like ``ids``: True where the token satisfies the proxy."""
        ids = np.asarray(ids)
        lookup = self.vocabulary_mask(tokenizer, ids)
        return np.vectorize(lookup.__getitem__, otypes=[bool])(ids) if ids.size else np.zeros(ids.shape, bool)


def _starts_with_apostrophe(text: str) -> bool:
    return text.lstrip(" ")[:1] in ("'", "\u2019")


APOSTROPHE = TokenProxy(
    "apostrophe", "the token begins with an apostrophe (' or ’): ' 's 't 'm ’", _starts_with_apostrophe
)
CLOSING_PARENTHESIS = TokenProxy("closing parenthesis", "the token contains ')'", lambda t: ")" in t)
OPENING_PARENTHESIS = TokenProxy("opening parenthesis", "the token contains '('", lambda t: "(" in t)


def proxy_scores(acts: np.ndarray, on_proxy: np.ndarray, rows: np.ndarray, top: int = 20) -> pd.DataFrame:
    """How well each feature of ``acts`` [n_rows, n_features] matches a proxy (``on_proxy`` [n_rows]), over ``rows``:
    ``precision`` = share of the feature's activation mass on proxy rows, ``recall`` = share of proxy rows where it
    fires, ``f1`` their harmonic mean (the selection score), ``top_precision`` = share of its ``top`` largest
    activations on proxy rows, and ``density``."""
    return proxy_scores_many(acts, {"proxy": on_proxy}, rows, top)["proxy"]


def proxy_scores_many(
    acts: np.ndarray, proxies: dict[str, np.ndarray], rows: np.ndarray, top: int = 20
) -> dict[str, pd.DataFrame]:
    """``proxy_scores`` for several proxies at once: the parts that do not depend on the proxy (the selected rows,
    activation mass, firing pattern, each feature's top rows) are computed once."""
    a = torch.from_numpy(np.ascontiguousarray(acts[rows])).float()  # [n, F]
    fires = a > 0
    mass = a.sum(0, dtype=torch.float64)
    top_rows = torch.topk(a, min(top, len(a)), dim=0).indices  # [k, F]
    out = {}
    for name, on_proxy in proxies.items():
        p = torch.from_numpy(np.asarray(on_proxy)[rows])
        if not p.any():
            raise ValueError(f"no row satisfies the proxy {name!r}: pick a corpus or proxy where it occurs")
        on_mass = a[p].sum(0, dtype=torch.float64)
        precision = torch.where(mass > 0, on_mass / mass.clamp(min=1e-30), torch.zeros_like(mass))
        recall = fires[p].double().mean(0)
        f1 = torch.where(
            precision + recall > 0,
            2 * precision * recall / (precision + recall).clamp(min=1e-30),
            torch.zeros_like(mass),
        )
        out[name] = pd.DataFrame(
            {
                "feature": np.arange(a.shape[1]),
                "f1": f1.numpy(),
                "precision": precision.numpy(),
                "recall": recall.numpy(),
                "top_precision": p[top_rows].double().mean(0).numpy(),
                "density": fires.double().mean(0).numpy(),
            }
        )
    return out


def best_feature(scores: pd.DataFrame) -> pd.Series:
    """The row of ``proxy_scores`` with the highest F1 (ties: the lower index)."""
    return scores.sort_values(["f1", "feature"], ascending=[False, True], kind="stable").iloc[0]


# ------------------------------------------------------------------------------- documents and out-of-sample scores


def documents_of(
    source: np.ndarray, offset: np.ndarray, doc_lengths: Sequence[np.ndarray], context_length: int
) -> np.ndarray:
    """Document label [n_contexts, context_length] of every position of packed contexts: context ``c`` is the
    window of ``context_length`` tokens starting at ``offset[c]`` of source ``source[c]``'s split stream, whose
    documents (separator included) have lengths ``doc_lengths[source]`` in order. Labels are unique across sources
    (source ``s``'s documents are numbered after those of sources ``0..s-1``); a window that crosses a document
    boundary gets both documents' labels, each on its own positions."""
    source, offset = np.asarray(source), np.asarray(offset)
    first = np.concatenate([[0], np.cumsum([len(d) for d in doc_lengths])])
    out = np.empty((len(source), context_length), np.int64)
    at = offset[:, None] + np.arange(context_length)[None]
    for s, lengths in enumerate(doc_lengths):
        here = source == s
        if not here.any():
            continue
        starts = np.concatenate([[0], np.cumsum(np.asarray(lengths, np.int64))[:-1]])
        doc = np.searchsorted(starts, at[here], side="right") - 1
        if (doc < 0).any() or (at[here] >= np.sum(lengths)).any():
            raise ValueError(f"source {s}: a window reaches outside its split stream")
        out[here] = first[s] + doc
    return out


def row_documents(store: ActivationStore, corpus: Corpus, split: str = "heldout") -> np.ndarray:
    """[n_rows] the document (of ``corpus``'s ``split``) each row of ``store`` comes from, numbered across sources:
    ``documents_of`` over the store's context sources and offsets. Several windows may share a document."""
    source = np.load(store.dir / "context_source.npy")
    offset = np.load(store.dir / "context_offset.npy")
    flag = 1 if split == "heldout" else 0
    lengths = []
    for name in store.config["sources"]:
        docs = corpus.docs(name)
        lengths.append(docs[docs[:, 2] == flag, 1])
    return documents_of(source, offset, lengths, store.context_length).reshape(-1)


def split_documents(documents: np.ndarray, seed: int = 0) -> np.ndarray:
    """Boolean mask over ``documents`` (one label per row): True for rows of a random half of the distinct
    documents (the selection half), False for the rest (the evaluation half)."""
    labels = np.unique(documents)
    chosen = np.random.default_rng(seed).permutation(labels)[: len(labels) // 2]
    return np.isin(documents, chosen)


@dataclass(frozen=True)
class F1Bootstrap:
    """The proxy F1 of several activation columns over the same rows, with replicates that resample documents (the
    same draws for every column, so differences between columns are paired)."""

    names: list[str]
    point: np.ndarray  # [k] F1 of each column on all rows
    boot: np.ndarray  # [n_boot, k] F1 on each bootstrap replicate
    n_documents: int

    def _estimate(self, point: float, boot: np.ndarray) -> Estimate:
        lo, hi = np.percentile(boot, [2.5, 97.5])
        return Estimate(
            float(point), float(boot.std(ddof=1)), self.n_documents, float(lo), float(hi), kind="cluster bootstrap"
        )

    def estimate(self, name: str) -> Estimate:
        j = self.names.index(name)
        return self._estimate(self.point[j], self.boot[:, j])

    def difference(self, a: str, b: str) -> Estimate:
        """F1 of ``a`` minus F1 of ``b``, interval from the paired replicates."""
        i, j = self.names.index(a), self.names.index(b)
        return self._estimate(self.point[i] - self.point[j], self.boot[:, i] - self.boot[:, j])


def _f1_from_sums(sums: np.ndarray) -> np.ndarray:
    """F1 from summed [..., 4, k] (activation mass on proxy rows, all mass, proxy rows where it fires, proxy rows)."""
    on_mass, mass, hits, n_proxy = sums[..., 0, :], sums[..., 1, :], sums[..., 2, :], sums[..., 3, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(mass > 0, on_mass / mass, 0.0)
        recall = np.where(n_proxy > 0, hits / n_proxy, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return f1


def proxy_f1_bootstrap(
    cols: dict[str, np.ndarray], on_proxy: np.ndarray, documents: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> F1Bootstrap:
    """``proxy_scores``'s F1 (precision = share of activation mass on proxy rows, recall = share of proxy rows where
    the activation is > 0) for each column of ``cols`` {name: [n_rows] non-negative activations}, with a 95%
    interval from ``n_boot`` replicates that draw documents with replacement (each document keeps all its rows).
    Precision and recall are ratios of sums over rows, so a replicate sums each drawn document's totals."""
    names = list(cols)
    on = np.asarray(on_proxy, bool)
    labels, group = np.unique(np.asarray(documents), return_inverse=True)
    per_doc = np.zeros((len(labels), 4, len(names)))
    for j, name in enumerate(names):
        a = np.asarray(cols[name], np.float64)
        if a.shape != on.shape:
            raise ValueError(f"{name}: {a.shape[0]} activations for {on.shape[0]} proxy rows")
        if (a < 0).any():
            raise ValueError(f"{name}: activations must be non-negative (project on both signs of a direction)")
        for k, w in enumerate((a * on, a, (a > 0) & on, on)):
            per_doc[:, k, j] = np.bincount(group, weights=np.asarray(w, np.float64), minlength=len(labels))
    point = _f1_from_sums(per_doc.sum(0))
    draw = np.random.default_rng(seed).integers(0, len(labels), size=(n_boot, len(labels)))
    weights = np.stack([np.bincount(d, minlength=len(labels)) for d in draw]).astype(np.float64)  # [n_boot, docs]
    boot = _f1_from_sums(np.einsum("bd,dsk->bsk", weights, per_doc))
    return F1Bootstrap(names, point, boot, len(labels))


def projection_f1(
    directions: Tensor, center: Tensor, x: np.ndarray, on_proxy: np.ndarray, batch: int = 16384
) -> np.ndarray:
    """[2 * n_directions] the proxy F1 (as ``proxy_scores``) of ReLU of ``x`` [n, d] (minus ``center``) projected
    on each direction, then on its negative: either sign of a direction can serve as a non-negative activation, as
    in the neuron, PCA and ICA baselines' ``LinearDictionary``. Sums are accumulated batch by batch, so the
    [n, 2 * n_directions] projections are never held."""
    both = torch.cat([directions, -directions]).float()
    on = np.asarray(on_proxy, bool)
    if not on.any():
        raise ValueError("no row satisfies the proxy")
    sums = torch.zeros(4, both.shape[0], dtype=torch.float64)
    sums[3] = float(on.sum())
    for s in range(0, len(x), batch):
        proj = torch.relu((torch.from_numpy(np.asarray(x[s : s + batch], np.float32)) - center.float()) @ both.T)
        hit = proj[torch.from_numpy(on[s : s + batch])]
        sums[0] += hit.sum(0, dtype=torch.float64)
        sums[1] += proj.sum(0, dtype=torch.float64)
        sums[2] += (hit > 0).sum(0)
    return _f1_from_sums(sums.numpy())


def interval_table(
    col: np.ndarray, on_proxy: np.ndarray, ids: np.ndarray, tokenizer, n_bins: int = 10, n_types: int = 3
) -> pd.DataFrame:
    """One row per equal-width activation interval of (0, max]: tokens in it, the proxy's precision there with a
    Wilson 95% interval, the recall of the rule "activation > lower edge", and its ``n_types`` commonest tokens."""
    on = col > 0
    if not on.any():
        raise ValueError("the feature never fires on these rows")
    edges = np.linspace(0.0, float(col[on].max()), n_bins + 1)
    n_proxy = max(1, int(on_proxy.sum()))
    out = []
    for b in range(n_bins):
        sel = on & (col > edges[b]) & (col <= edges[b + 1])
        row = {
            "interval": f"{edges[b]:.2f}-{edges[b + 1]:.2f}",
            "lo": edges[b],
            "hi": edges[b + 1],
            "tokens": int(sel.sum()),
            "proxy": int((sel & on_proxy).sum()),
            "recall_above_lo": float((on_proxy & (col > edges[b])).sum() / n_proxy),
        }
        if sel.any():
            est = proportion(on_proxy[sel])
            row.update(precision=est.mean, precision_lo=est.lo, precision_hi=est.hi)
            common = Counter(ids[sel].tolist()).most_common(n_types)
            row["commonest"] = ", ".join(
                f"{t!r} {c}" for t, (_, c) in zip(readable_tokens(tokenizer, [i for i, _ in common]), common)
            )
        else:
            row.update(precision=np.nan, precision_lo=np.nan, precision_hi=np.nan, commonest="")
        out.append(row)
    return pd.DataFrame(out)


def high_interval_precision(col: np.ndarray, on_proxy: np.ndarray, fraction: float = 0.5):
    """The proxy's precision (Wilson ``Estimate``) over activations above ``fraction`` of the maximum."""
    high = col > fraction * float(col.max())
    return proportion(on_proxy[high])


def top_token_types(col: np.ndarray, ids: np.ndarray, tokenizer, k: int = 20, n: int = 3) -> str:
    """The commonest tokens among the feature's ``k`` largest activations (a short label for a graph node)."""
    top = np.argsort(-col, kind="stable")[:k]
    top = top[col[top] > 0]
    common = Counter(ids[top].tolist()).most_common(n)
    return " ".join(repr(t) for t in readable_tokens(tokenizer, [i for i, _ in common]))


def interval_examples(
    col: np.ndarray,
    ids: np.ndarray,
    context_length: int,
    tokenizer,
    n_bins: int = 5,
    per_bin: int = 2,
    window: int = 8,
    seed: int = 0,
) -> pd.DataFrame:
    """Examples drawn uniformly at random from equal-width activation intervals (Bricken et al.'s sampling, the
    highest interval first): the activating token in brackets with ``window`` tokens of its context before it."""
    from saelib.interp.dashboard import DashboardConfig, example_rows

    cfg = DashboardConfig(top_examples=0, quantile_bins=n_bins, examples_per_bin=per_bin, seed=seed)
    rows = []
    for label, picks in example_rows(col, cfg, np.random.default_rng(seed)).items():
        if label == "top":
            continue
        for r in picks:
            ctx, pos = divmod(int(r), context_length)
            start = ctx * context_length
            before = readable_tokens(tokenizer, ids[start + max(0, pos - window) : start + pos])
            rows.append(
                {
                    "interval": label.split(" (")[0].removeprefix("interval "),
                    "activation": float(col[r]),
                    "context": "".join(before) + "[" + readable_tokens(tokenizer, [ids[r]])[0] + "]",
                }
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------- with the model


def feature_directions(sae) -> Tensor:
    """[n_features, d_in] what each feature adds per unit of activation, in raw activation space (decode(e_i) −
    decode(0): any input scaling is folded in)."""
    with torch.no_grad():
        eye = torch.eye(sae.cfg.n_features)
        return sae.decode(eye) - sae.decode(torch.zeros(1, sae.cfg.n_features))


def contribution(sae, x: Tensor, feature: int) -> tuple[Tensor, Tensor]:
    """(the feature's activation [...], its contribution to the reconstruction [..., d_in]) at activations x."""
    codes = sae.encode(x.float(), grad=True)[..., feature]
    return codes, codes[..., None] * feature_directions(sae)[feature]


def residuals_at(model, tokens: Tensor, layers: Sequence[int]) -> dict[int, Tensor]:
    """{layer: resid_post [n, pos, d]} of ``tokens`` [n, pos], stopping after the deepest layer, on the CPU (where the
    SAEs are) wherever the model runs, float32: ``saelib.model.forward.collect_residuals`` without logits."""
    return collect_residuals(model, tokens, layers)[0]


@dataclass
class AblationResult:
    mean_delta_prob: Tensor  # [vocab] mean change of next-token probability over the firing positions
    next_token: np.ndarray  # [positions] change of the actual next token's log-probability
    control_next_token: np.ndarray  # the same, ablating a random direction of the same norm
    context: np.ndarray  # [positions] which context each firing position belongs to (the unit of the interval)
    position: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [positions] position in it
    watched: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [positions] change of log p(watch), if asked
    control_watched: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the same for the random direction

    def summary(self, clusters: np.ndarray | None = None) -> dict[str, float]:
        """Means of the changes with 95% intervals: a t interval over contexts (positions averaged per context) by
        default; with ``clusters`` (one label per position, e.g. the document), a bootstrap that resamples them.
        ``watch_*`` keys (the watched token's log-probability, minus the control's) when a token was watched."""

        def interval(values: np.ndarray) -> Estimate:
            if clusters is None:
                return _clustered(values, self.context)
            return cluster_bootstrap(values, clusters)

        est = interval(self.next_token)
        diff = interval(self.next_token - self.control_next_token)
        out = {
            "positions": len(self.next_token),
            "contexts": len(np.unique(self.context)),
            "clusters": len(np.unique(self.context if clusters is None else clusters)),
            "delta_next_token": est.mean,
            "delta_lo": est.lo,
            "delta_hi": est.hi,
            "control_delta": interval(self.control_next_token).mean,
            "minus_control": diff.mean,
            "minus_control_lo": diff.lo,
            "minus_control_hi": diff.hi,
        }
        if len(self.watched):
            w = interval(self.watched)
            wd = interval(self.watched - self.control_watched)
            out.update(
                watch=w.mean,
                watch_lo=w.lo,
                watch_hi=w.hi,
                watch_control=interval(self.control_watched).mean,
                watch_minus_control=wd.mean,
                watch_minus_control_lo=wd.lo,
                watch_minus_control_hi=wd.hi,
            )
        return out


def _clustered(values: np.ndarray, groups: np.ndarray):
    """Mean with a t interval over groups (positions of one context are not independent)."""
    means = [values[groups == g].mean() for g in np.unique(groups)]
    return mean_se(np.asarray(means))


@torch.no_grad()
def next_token_ablation(
    model,
    sae,
    hook: str,
    tokens: Tensor,
    feature: int,
    keep: Tensor,
    seed: int = 0,
    batch_size: int = 8,
    watch: int | None = None,
) -> AblationResult:
    """Remove ``feature``'s contribution at ``hook`` (a residual hook) wherever it fires among ``keep`` [n, pos]
    positions of ``tokens`` [n, pos], and compare next-token log-probabilities with the clean run; the control
    removes a random direction with the same norm at the same positions. With ``watch`` (a token id), also the
    change of that token's log-probability at the same positions, for the feature and the control."""
    layer = layer_of(hook)
    gen = torch.Generator().manual_seed(seed)
    direction = feature_directions(sae)[feature]  # once: decoding the identity is the costly part
    deltas: list[Tensor] = []
    nxt: list[np.ndarray] = []
    ctl: list[np.ndarray] = []
    ctx: list[np.ndarray] = []
    pos: list[np.ndarray] = []
    watched: dict[str, list[np.ndarray]] = {"feature": [], "control": []}
    for start in range(0, len(tokens), batch_size):
        batch = tokens[start : start + batch_size]
        x = collect_residuals(model, batch, [layer])[0][layer]
        codes = sae.encode(x)[..., feature]
        contrib = codes[..., None] * direction
        fire = (codes > 0) & keep[start : start + batch_size]
        fire[:, -1] = False  # the last position has no next token in the context
        if not fire.any():
            continue
        rand = torch.randn(x.shape[-1], generator=gen)
        random_contrib = rand / rand.norm() * contrib.norm(dim=-1, keepdim=True)
        clean = logits_from(model, x, layer).float().log_softmax(-1)
        edited = {}
        for name, c in (("feature", contrib), ("control", random_contrib)):
            xe = torch.where(fire[..., None], x - c, x)
            edited[name] = logits_from(model, xe, layer).float().log_softmax(-1)
        target = batch[:, 1:]
        pad = torch.cat([target, target[:, -1:]], 1)  # aligned with positions; the last is never used (fire=False)
        for name, out in (("feature", nxt), ("control", ctl)):
            d = (edited[name] - clean).gather(-1, pad[..., None])[..., 0]
            out.append(d[fire].numpy())
            if watch is not None:
                watched[name].append((edited[name] - clean)[..., watch][fire].numpy())
        deltas.append((edited["feature"].exp() - clean.exp())[fire].sum(0))
        ctx.append((torch.arange(start, start + len(batch))[:, None].expand_as(fire))[fire].numpy())
        pos.append(torch.arange(fire.shape[1]).expand_as(fire)[fire].numpy())
    if not deltas:
        raise ValueError(f"feature {feature} never fires on these tokens")
    n = sum(len(c) for c in ctx)
    return AblationResult(
        torch.stack(deltas).sum(0) / n,
        np.concatenate(nxt),
        np.concatenate(ctl),
        np.concatenate(ctx),
        np.concatenate(pos),
        np.concatenate(watched["feature"]) if watch is not None else np.zeros(0),
        np.concatenate(watched["control"]) if watch is not None else np.zeros(0),
    )


def _interval(values: np.ndarray, groups: np.ndarray | None, seed: int = 0) -> Estimate:
    """t interval over the values, or a bootstrap resampling ``groups`` (one label per value) when given."""
    return mean_se(values) if groups is None else cluster_bootstrap(values, groups, seed=seed)


def upstream_effects(
    model,
    saes: dict[int, SAE],
    tokens: Tensor,
    target: tuple[int, int],
    source_layer: int,
    n_candidates: int = 8,
    keep: Tensor | None = None,
    groups: np.ndarray | None = None,
    features: Sequence[int] | None = None,
    n_controls: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """How much ablating each of the most promising features of ``source_layer`` lowers feature ``target`` =
    (layer, index) on ``tokens`` [n, pos], split into the direct residual path and the path through the blocks.

    Candidates are ranked by attribution, the first-order effect of removing the feature (−activation × decoder
    direction · gradient of the target's summed activation); the top ``n_candidates`` (or the given ``features``)
    are ablated exactly (their contribution removed at every position, the blocks in between rerun). ``effect`` =
    relative change of the target's summed activation over the positions where it fires in a context (−0.3: it
    falls by 30%), averaged over the contexts where it fires. ``direct`` = the same change when the contribution is
    removed from the target layer's residual instead, with no block rerun: the feature's decoder direction carried
    unchanged by the residual stream and read by the target's encoder. ``mediated`` = ``effect`` − ``direct``, what
    the attention and MLP blocks in between add (negative: they pass more of it on; positive: they make up for
    part of it). Intervals: t over the contexts, or a bootstrap over ``groups`` (one label per context of
    ``tokens``, e.g. its document) when given.

    Controls (``n_controls`` > 0): ``n_controls`` + 1 features of ``source_layer`` that are not candidates but fire
    at the target's firing positions at least once per four contexts are drawn at random (``seed``) and
    ablated the same way. The first ``n_controls`` form the baseline, represented by the strongest of them (the
    lowest mean effect): ``beyond_control`` = the candidate's per-context effect minus that control's in the same
    context, with a paired interval. The last one is put through the same comparison as a row with ``role`` =
    "control" (a negative control: a random co-firing feature, which should not lower the target beyond the
    strongest of the others). Fewer co-firing features than that raise ``ValueError``."""
    t_layer, t_feature = target
    if not source_layer < t_layer:
        raise ValueError(f"source layer {source_layer} must come before the target's layer {t_layer}")
    x = collect_residuals(model, tokens, [source_layer])[0][source_layer]
    keep = torch.ones(tokens.shape, dtype=torch.bool) if keep is None else keep
    src, tgt = saes[source_layer], saes[t_layer]
    with torch.no_grad():
        x_target = run_blocks(model, x, source_layer, t_layer)
        clean = tgt.encode(x_target)[..., t_feature]
    fire = (clean > 0) & keep
    if not fire.any():
        raise ValueError(f"target feature {t_feature} at layer {t_layer} never fires on these tokens")
    xg = x.clone().requires_grad_(True)
    act = tgt.encode(run_blocks(model, xg, source_layer, t_layer), grad=True)[..., t_feature]
    (act * fire).sum().backward()
    if xg.grad is None:
        raise RuntimeError(f"feature {t_feature} at layer {t_layer} does not depend on layer {source_layer}'s residual")
    directions = feature_directions(src)  # [F, d]
    with torch.no_grad():
        codes = src.encode(x) * keep[..., None]
        attribution = -(codes * (xg.grad @ directions.T)).sum((0, 1))  # first-order change of the target
    if features is None:  # most negative first: removing it lowers the target most
        chosen = torch.argsort(attribution)[:n_candidates].tolist()
    else:
        chosen = [int(f) for f in features]
    base = (clean * fire).sum(1)  # [n] per context
    used = base > 0
    grp = None if groups is None else np.asarray(groups)[used.numpy()]
    min_cofires = max(1, int(used.sum()) // 4)
    controls = _cofiring_controls(codes, fire, chosen, min_cofires, n_controls, seed) if n_controls else []

    def ablate(f: int) -> tuple[np.ndarray, np.ndarray]:
        removed = codes[..., f : f + 1] * directions[f]
        after = tgt.encode(run_blocks(model, x - removed, source_layer, t_layer))[..., t_feature]
        direct_after = tgt.encode(x_target - removed)[..., t_feature]
        total = (((after - clean) * fire).sum(1)[used] / base[used]).numpy()
        return total, (((direct_after - clean) * fire).sum(1)[used] / base[used]).numpy()

    rows = []
    with torch.no_grad():
        control_effects = [ablate(f)[0] for f in controls[:n_controls]]
        baseline = min(control_effects, key=lambda v: float(v.mean())) if control_effects else None
        for f, role in [(f, "candidate") for f in chosen] + [(f, "control") for f in controls[n_controls:]]:
            total, direct = ablate(f)
            est, d_est, m_est = (_interval(v, grp) for v in (total, direct, total - direct))
            beyond = _interval(total - baseline, grp) if baseline is not None else None
            rows.append(
                {
                    "role": role,
                    "source_layer": source_layer,
                    "source": f,
                    "target_layer": t_layer,
                    "target": t_feature,
                    "attribution": float(attribution[f] / base.sum()),
                    "effect": est.mean,
                    "effect_lo": est.lo,
                    "effect_hi": est.hi,
                    "direct": d_est.mean,
                    "direct_lo": d_est.lo,
                    "direct_hi": d_est.hi,
                    "mediated": m_est.mean,
                    "mediated_lo": m_est.lo,
                    "mediated_hi": m_est.hi,
                    "source_density": float((codes[..., f] > 0)[keep].float().mean()),
                    "beyond_control": beyond.mean if beyond else float("nan"),
                    "beyond_control_lo": beyond.lo if beyond else float("nan"),
                    "beyond_control_hi": beyond.hi if beyond else float("nan"),
                }
            )
    return pd.DataFrame(rows).sort_values("effect", kind="stable").reset_index(drop=True)


def _cofiring_controls(
    codes: Tensor, fire: Tensor, exclude: Sequence[int], min_cofires: int, n_controls: int, seed: int
) -> list[int]:
    """``n_controls`` + 1 random features (not in ``exclude``) firing at ``fire``'s positions at least
    ``min_cofires`` times in all."""
    counts = ((codes > 0) & fire[..., None]).sum((0, 1)).numpy()
    pool = np.setdiff1d(np.flatnonzero(counts >= min_cofires), np.asarray(exclude, dtype=np.int64))
    if pool.size < n_controls + 1:
        raise ValueError(
            f"only {pool.size} non-candidate features fire with the target at least {min_cofires} times; "
            f"{n_controls + 1} are needed for the controls: lower n_controls or use more contexts"
        )
    return [int(f) for f in np.random.default_rng(seed).choice(pool, n_controls + 1, replace=False)]


@dataclass(frozen=True)
class CircuitTrace:
    """What ``trace_circuit`` found: the kept ``edges`` and, per traced node, the held-out random co-firing
    feature put through the same edge rule (``controls``, with ``kept`` saying whether the rule admitted it)."""

    edges: pd.DataFrame
    controls: pd.DataFrame


def trace_circuit(
    model,
    saes: dict[int, SAE],
    tokens: Tensor,
    target: tuple[int, int],
    layers: Sequence[int],
    n_candidates: int = 8,
    branch: int = 2,
    keep: Tensor | None = None,
    groups: np.ndarray | None = None,
    n_controls: int = 0,
    seed: int = 0,
) -> CircuitTrace:
    """Edges of the circuit feeding ``target`` through the earlier ``layers`` (descending from the target's):
    at each step, the ``branch`` upstream features whose exact ablation lowers the node most become nodes whose own
    upstream features are traced next. The edge rule: the effect's interval lies below 0 and, with
    ``n_controls`` > 0, so does ``beyond_control``'s (the candidate lowers the node more than the strongest of
    ``n_controls`` random features that fire with it, paired by context). Each edge carries
    ``upstream_effects``'s split into the direct residual path and the mediated one."""
    frontier, edges, controls = [target], [], []
    for source_layer in sorted((la for la in layers if la < target[0]), reverse=True):
        nxt = []
        for node in frontier:
            found = upstream_effects(
                model, saes, tokens, node, source_layer, n_candidates, keep, groups, n_controls=n_controls, seed=seed
            )
            rule = (found.effect_hi < 0) & ((found.beyond_control_hi < 0) if n_controls else True)
            controls.append(found[found.role == "control"].assign(kept=rule[found.role == "control"]))
            found = found[rule & (found.role == "candidate")].head(branch)
            edges.append(found)
            nxt += [(source_layer, int(f)) for f in found.source]
        frontier = list(dict.fromkeys(nxt))
        if not frontier:
            break
    return CircuitTrace(
        pd.concat(edges, ignore_index=True) if edges else pd.DataFrame(),
        pd.concat(controls, ignore_index=True) if controls else pd.DataFrame(),
    )
