"""Case studies of single features (Cunningham et al. 2023, section 5; Bricken et al. 2023's interval views).

A feature is found by rule, not by index: a *token proxy* (a predicate on the token's text, e.g. "begins with an
apostrophe") marks the rows it should fire on, and the feature whose activations best match it is chosen. Then:

- ``interval_table``: equal-width activation intervals over (0, max], with the proxy's precision in each (Wilson
  95% interval), the recall of thresholding at its lower edge, and the commonest token types (Bricken et al.);
- ``next_token_ablation``: subtract the feature's contribution at the positions where it fires, run the rest of
  the model, and measure how the next-token log-probabilities change, against a random direction of the same norm;
- ``upstream_effects`` / ``trace_circuit``: ablate features of an earlier residual layer and measure how much a
  later feature's activation falls (attribution ranks candidates, exact ablation measures them), traced back
  layer by layer into a graph, as the paper's closing-parenthesis circuit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from saelib.core.stats import mean_se, proportion
from saelib.interp.tokens import readable_tokens
from saelib.model.forward import collect_residuals, logits_from, run_blocks
from saelib.model.hooks import layer_of

if TYPE_CHECKING:
    from saelib.dictionaries.sae import SAE

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

    def summary(self) -> dict[str, float]:
        est = _clustered(self.next_token, self.context)
        diff = _clustered(self.next_token - self.control_next_token, self.context)
        return {
            "positions": len(self.next_token),
            "contexts": len(np.unique(self.context)),
            "delta_next_token": est.mean,
            "delta_lo": est.lo,
            "delta_hi": est.hi,
            "control_delta": _clustered(self.control_next_token, self.context).mean,
            "minus_control": diff.mean,
            "minus_control_lo": diff.lo,
            "minus_control_hi": diff.hi,
        }


def _clustered(values: np.ndarray, groups: np.ndarray):
    """Mean with a t interval over groups (positions of one context are not independent)."""
    means = [values[groups == g].mean() for g in np.unique(groups)]
    return mean_se(np.asarray(means))


@torch.no_grad()
def next_token_ablation(
    model, sae, hook: str, tokens: Tensor, feature: int, keep: Tensor, seed: int = 0, batch_size: int = 8
) -> AblationResult:
    """Remove ``feature``'s contribution at ``hook`` (a residual hook) wherever it fires among ``keep`` [n, pos]
    positions of ``tokens`` [n, pos], and compare next-token log-probabilities with the clean run; the control
    removes a random direction with the same norm at the same positions."""
    layer = layer_of(hook)
    gen = torch.Generator().manual_seed(seed)
    direction = feature_directions(sae)[feature]  # once: decoding the identity is the costly part
    deltas: list[Tensor] = []
    nxt: list[np.ndarray] = []
    ctl: list[np.ndarray] = []
    ctx: list[np.ndarray] = []
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
        deltas.append((edited["feature"].exp() - clean.exp())[fire].sum(0))
        ctx.append((torch.arange(start, start + len(batch))[:, None].expand_as(fire))[fire].numpy())
    if not deltas:
        raise ValueError(f"feature {feature} never fires on these tokens")
    n = sum(len(c) for c in ctx)
    return AblationResult(torch.stack(deltas).sum(0) / n, np.concatenate(nxt), np.concatenate(ctl), np.concatenate(ctx))


def upstream_effects(
    model,
    saes: dict[int, SAE],
    tokens: Tensor,
    target: tuple[int, int],
    source_layer: int,
    n_candidates: int = 8,
    keep: Tensor | None = None,
) -> pd.DataFrame:
    """How much ablating each of the most promising features of ``source_layer`` lowers feature ``target`` =
    (layer, index) on ``tokens`` [n, pos].

    Candidates are ranked by attribution, the first-order effect of removing the feature (−activation × decoder
    direction · gradient of the target's summed activation); the top ``n_candidates`` are ablated exactly (their
    contribution removed at every position, the blocks in between rerun). ``effect`` = relative change of the
    target's summed activation over the positions where it fires in a context (−0.3: it falls by 30%), averaged over
    the contexts where it fires, with a t interval over them."""
    t_layer, t_feature = target
    if not source_layer < t_layer:
        raise ValueError(f"source layer {source_layer} must come before the target's layer {t_layer}")
    x = collect_residuals(model, tokens, [source_layer])[0][source_layer]
    keep = torch.ones(tokens.shape, dtype=torch.bool) if keep is None else keep
    src, tgt = saes[source_layer], saes[t_layer]
    with torch.no_grad():
        clean = tgt.encode(run_blocks(model, x, source_layer, t_layer))[..., t_feature]
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
    order = torch.argsort(attribution)[:n_candidates]  # most negative first: removing it lowers the target most
    base = (clean * fire).sum(1)  # [n] per context
    rows = []
    with torch.no_grad():
        for f in order.tolist():
            edited = x - codes[..., f : f + 1] * directions[f]
            after = tgt.encode(run_blocks(model, edited, source_layer, t_layer))[..., t_feature]
            per_ctx = ((after - clean) * fire).sum(1)
            used = base > 0
            est = mean_se((per_ctx[used] / base[used]).numpy())
            rows.append(
                {
                    "source_layer": source_layer,
                    "source": f,
                    "target_layer": t_layer,
                    "target": t_feature,
                    "attribution": float(attribution[f] / base.sum()),
                    "effect": est.mean,
                    "effect_lo": est.lo,
                    "effect_hi": est.hi,
                    "source_density": float((codes[..., f] > 0)[keep].float().mean()),
                }
            )
    return pd.DataFrame(rows).sort_values("effect", kind="stable").reset_index(drop=True)


def trace_circuit(
    model,
    saes: dict[int, SAE],
    tokens: Tensor,
    target: tuple[int, int],
    layers: Sequence[int],
    n_candidates: int = 8,
    branch: int = 2,
    keep: Tensor | None = None,
) -> pd.DataFrame:
    """Edges of the circuit feeding ``target`` through the earlier ``layers`` (descending from the target's):
    at each step, the ``branch`` upstream features whose exact ablation lowers the node most (with the interval's
    upper end below 0) become nodes whose own upstream features are traced next."""
    frontier, edges = [target], []
    for source_layer in sorted((la for la in layers if la < target[0]), reverse=True):
        nxt = []
        for node in frontier:
            found = upstream_effects(model, saes, tokens, node, source_layer, n_candidates, keep)
            found = found[found.effect_hi < 0].head(branch)
            edges.append(found)
            nxt += [(source_layer, int(f)) for f in found.source]
        frontier = list(dict.fromkeys(nxt))
        if not frontier:
            break
    return pd.concat(edges, ignore_index=True) if edges else pd.DataFrame()
