"""Feature dashboards as static HTML: browse a dictionary offline, the way Neuronpedia or SAEDashboard let you.

``export_dashboard`` writes ``index.html`` (every feature with its density, maximum activation and a one-line
auto-summary, sorted by density with features flagged as firing mostly on massive-activation rows last, and a search
box that filters the rows in the page) and one ``features/<i>.html`` per exported feature: a histogram of its
non-zero activations, its top examples and examples drawn from quantile groups of equal count, its logit effects
(direct path through the unembedding: a histogram over the vocabulary and the top tokens), the features with the
most similar decoder directions, its best-aligned neuron (or residual-stream dimension), and the features that fire
with it most above chance (lift). Statistics are over the ordinary tokens of the rows read, massive-activation rows
left out by training's rule (``features.shown_rows``); every page states both numbers. Pages are plain HTML, inline
SVG and, on the index, a few lines of inline JavaScript: no server, no CDN. Token text, summaries and names are
escaped with their invisible format characters (bidirectional overrides among them) shown as code points.

An export writes a new folder beside ``out`` and switches it in by renames, so ``out`` holds exactly one export's
pages; an earlier ``out`` is removed only if it is a dashboard (its ``MARKER`` file, or only the files an export
writes), never a folder of something else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch

from saelib.activations.store import ActivationStore
from saelib.core.artifacts import atomic_write_bytes, atomic_write_json
from saelib.interp.explanations import TokenExplainer
from saelib.interp.features import (
    MASSIVE_FLAG,
    MASSIVE_SHARE,
    excluded_line,
    feature_codes,
    massive_activations,
    massive_note,
    massive_share,
    ordinary_rows,
    shown_rows,
)
from saelib.interp.fragments import Record
from saelib.interp.neurons import best_neuron
from saelib.interp.tokens import html_text, readable_tokens
from saelib.model.lens import NORM_HANDLING, top_tokens

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:70em;color:#222}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}
th{background:#f4f4f4}.ex{font-family:monospace;white-space:pre-wrap;margin:2px 0;line-height:1.6}
.ex span{border-radius:2px}.muted{color:#888}h2{margin-top:1.2em}.pair{display:flex;gap:3em}"""


MARKER = ".saelib-dashboard"  # in every exported folder: what a later export may replace
_PAGES = {"index.html", "features.json", "features"}  # everything an export writes besides MARKER


@dataclass(frozen=True)
class DashboardConfig:
    max_rows: int = 65_536  # store rows (whole contexts) read for statistics and examples
    top_examples: int = 8
    quantile_bins: int = 5  # groups of equal count of the non-zero activations, examples drawn from each
    examples_per_bin: int = 3
    window: int = 12  # tokens shown on each side of the example's token
    histogram_bins: int = 30
    logit_k: int = 10
    coactivation_k: int = 8
    coactivation_min_count: int = 3  # tokens where both fire, at least, for a lift to be listed
    related_k: int = 5  # features by decoder cosine
    neuron_rows: int = 8192  # shown rows sampled for the best-aligned neuron
    seed: int = 0


@dataclass(frozen=True)
class FeatureSummary:
    feature: int
    density: float  # fraction of ordinary rows where it fires
    max_activation: float
    mean_when_active: float
    summary: str  # the offline explainer's one line on its top examples ("" for a dead feature)
    massive_share: float = 0.0  # share of its activation mass on the massive-activation rows left out
    massive_note: str = ""  # features.massive_note: the flag, or the left-out peak

    @property
    def flagged(self) -> bool:
        return self.massive_share > MASSIVE_SHARE


def feature_matrix(
    sae, store: ActivationStore, hook: str, max_rows: int, leave_out_massive: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """[n_rows, n_features] float16 activations on the first ``max_rows`` rows (whole contexts) of ``store`` and the
    [n_rows] mask of the rows kept (position 0 and separators are left out and set to 0; with ``leave_out_massive``,
    as dashboards show them, massive-activation rows too: ``features.shown_rows``)."""
    n = _rows_read(store, max_rows)
    keep = shown_rows(store, hook) if leave_out_massive else ordinary_rows(store)
    arr, mask = store.activations(hook), keep[:n]
    chunks = []
    for start in range(0, n, 8192):
        x = torch.from_numpy(np.asarray(arr[start : min(n, start + 8192)], np.float32))
        chunks.append(feature_codes(sae, x).numpy().astype(np.float16))
    acts = np.concatenate(chunks)
    acts[~mask] = 0
    return acts, mask


def _rows_read(store: ActivationStore, max_rows: int) -> int:
    return max(1, min(store.n_rows, max_rows) // store.context_length) * store.context_length


def massive_rows_read(store: ActivationStore, mask: np.ndarray) -> np.ndarray:
    """Indices of the massive-activation rows among the rows read (ordinary rows outside ``mask``)."""
    return np.flatnonzero(ordinary_rows(store)[: len(mask)] & ~mask)


def _window(
    store: ActivationStore, tokenizer, row: int, values: np.ndarray, w: int
) -> tuple[list[str], np.ndarray, int]:
    ctx, pos = divmod(int(row), store.context_length)
    lo, hi = max(0, pos - w), min(store.context_length, pos + w + 1)
    base = ctx * store.context_length
    return (
        readable_tokens(tokenizer, store.tokens[ctx, lo:hi]),
        values[base + lo : base + hi].astype(np.float32),
        pos - lo,
    )


def example_rows(col: np.ndarray, cfg: DashboardConfig, rng: np.random.Generator) -> dict[str, list[int]]:
    """Rows to show for one feature's activations ``col`` [n_rows]: the top ones, then up to ``examples_per_bin``
    drawn uniformly from each of ``quantile_bins`` groups of equal count of its non-zero activations (highest
    group first)."""
    on = np.flatnonzero(col > 0)
    if len(on) == 0:
        return {}
    order = on[np.argsort(-col[on], kind="stable")]
    out = {"top": order[: cfg.top_examples].tolist()}
    groups = np.array_split(order, min(cfg.quantile_bins, len(order)))
    for q, members in enumerate(groups):
        pick = rng.choice(members, size=min(cfg.examples_per_bin, len(members)), replace=False)
        label = (
            f"quantile group {q + 1} of {len(groups)}: activations {float(col[members].min()):.2f}-"
            f"{float(col[members].max()):.2f} ({len(members):,} tokens)"
        )
        out[label] = sorted(pick.tolist())
    return out


def coactivations(
    acts: np.ndarray, counts: np.ndarray, n: int, feature: int, k: int, min_count: int = 3
) -> list[tuple[int, float, float, int]]:
    """Features firing with ``feature`` most above chance, over ``n`` shown rows where feature i fires on
    ``counts[i]``: (index, lift P(both) / (P(this) P(other)), P(other | this), tokens where both fire), by lift;
    pairs with fewer than ``min_count`` shared tokens are left out."""
    on = acts[:, feature] > 0
    if not on.any():
        return []
    both = (acts[on] > 0).sum(0).astype(np.float64)
    lift = np.where(counts > 0, both * n / (int(on.sum()) * np.maximum(counts, 1)), 0.0)
    lift[feature] = -1
    lift[both < min_count] = -1
    top = np.lexsort((-both, -lift))[:k]
    return [(int(i), float(lift[i]), float(both[i] / on.sum()), int(both[i])) for i in top if lift[i] > 0]


def related_features(decoder: torch.Tensor, feature: int, k: int) -> list[tuple[int, float]]:
    """The ``k`` features whose unit decoder directions (``decoder`` [n_features, d_in], rows of norm 1) have the
    highest cosine with ``feature``'s: (index, cosine)."""
    cos = decoder @ decoder[feature]
    cos[feature] = -2
    top = torch.topk(cos, min(k, len(cos) - 1))
    return [(int(i), float(c)) for i, c in zip(top.indices, top.values)]


def neuron_alignment(
    acts: np.ndarray, mask: np.ndarray, store: ActivationStore, hook: str, pages: Sequence[int], cfg: DashboardConfig
) -> dict[int, tuple[int, float, float]]:
    """Per page feature: (best neuron, its AUC for "the feature fires", the best |correlation| with any neuron), from
    ``neurons.best_neuron`` on up to ``neuron_rows`` shown rows; the hook's coordinates are the neurons."""
    rows = np.flatnonzero(mask)
    if len(rows) > cfg.neuron_rows:
        rows = np.sort(np.random.default_rng(cfg.seed).choice(rows, cfg.neuron_rows, replace=False))
    neurons = np.asarray(store.activations(hook)[rows], np.float32)
    out = {}
    for start in range(0, len(pages), 512):
        chunk = list(pages[start : start + 512])
        table = best_neuron(acts[rows][:, chunk].astype(np.float32), neurons)
        for f, row in zip(chunk, table.itertuples()):
            if np.isfinite(row.best_auc):
                out[f] = (int(row.best_neuron), float(row.best_auc), float(row.best_abs_corr))
    return out


def neuron_word(hook: str) -> str:
    """What a coordinate of ``hook`` is called on a page."""
    return "neuron" if ".mlp." in hook else "residual-stream dimension"


def summarize_features(
    acts: np.ndarray,
    mask: np.ndarray,
    store: ActivationStore,
    tokenizer,
    cfg: DashboardConfig,
    on_massive: np.ndarray | None = None,
) -> list[FeatureSummary]:
    """Density, max, mean-when-active and the offline explainer's line on each feature's top 5 examples, over the
    shown rows; with ``on_massive`` [m, n_features] (activations on the massive-activation rows left out), each
    feature's share of mass there and ``features.massive_note``."""
    explainer, n = TokenExplainer(), max(1, int(mask.sum()))
    out = []
    for f in range(acts.shape[1]):
        col = acts[:, f].astype(np.float32)
        held = np.zeros(0, np.float32) if on_massive is None else on_massive[:, f]
        share, note = massive_share(col, held), massive_note(col, held)
        on = col > 0
        if not on.any():
            out.append(FeatureSummary(f, 0.0, 0.0, 0.0, "", share, note))
            continue
        top = np.flatnonzero(on)[np.argsort(-col[on], kind="stable")[:5]]
        records = [Record(*_window(store, tokenizer, r, col, cfg.window)[:2]) for r in top]
        out.append(
            FeatureSummary(
                f, float(on.sum() / n), float(col.max()), float(col[on].mean()), explainer.explain(records), share, note
            )
        )
    return out


def _tokens_html(tokens: Sequence[str], values: np.ndarray, vmax: float, mark: int) -> str:
    spans = []
    for i, (t, v) in enumerate(zip(tokens, values)):
        alpha = 0.0 if vmax <= 0 else min(1.0, max(0.0, float(v) / vmax))
        style = f"background:rgba(230,90,20,{alpha:.2f})" + (";outline:1px solid #333" if i == mark else "")
        spans.append(f'<span style="{style}" title="{float(v):.3f}">{html_text(t)}</span>')
    return "".join(spans)


def _histogram_svg(
    values: np.ndarray, bins: int, label: str, css: str = "histogram", width: int = 520, height: int = 140
) -> str:
    counts, edges = np.histogram(values, bins=bins)
    scale = np.log1p(counts) / max(np.log1p(counts).max(), 1e-9)
    bw = width / bins
    bars = "".join(
        f'<rect x="{i * bw:.1f}" y="{height - 20 - s * (height - 30):.1f}" width="{bw - 1:.1f}" '
        f'height="{s * (height - 30):.1f}" fill="#e65a14"><title>{edges[i]:.3f}-{edges[i + 1]:.3f}: '
        f"{c:,}</title></rect>"
        for i, (c, s) in enumerate(zip(counts, scale))
    )
    return (
        f'<svg class="{css}" width="{width}" height="{height}" role="img" aria-label="{html_text(label)}">'
        f'{bars}<text x="0" y="{height - 4}" font-size="11">{edges[0]:.2f}</text>'
        f'<text x="{width - 40}" y="{height - 4}" font-size="11">{edges[-1]:.2f}</text></svg>'
        f'<div class="muted">{html_text(label)}, log count per bin</div>'
    )


def _page(title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html_text(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    ).encode()


@dataclass(frozen=True)
class PageData:
    """What every feature page draws on besides its own column: the shown rows' activations and counts, the rows'
    numbers, unit decoder directions, logit effects and neuron alignment of the page features."""

    acts: np.ndarray  # [n_rows, n_features] float16, rows left out set to 0
    counts: np.ndarray  # [n_features] shown rows where each feature fires
    n_shown: int
    n_excluded: int  # massive-activation rows left out
    decoder: torch.Tensor | None  # [n_features, d_in] unit decoder directions
    neurons: dict[int, tuple[int, float, float]]
    neuron_word: str


def _stats_line(data: PageData) -> str:
    return (
        f'<p class="stats">Statistics over <b class="tokens">{data.n_shown:,}</b> tokens; '
        f"{html_text(excluded_line(data.n_excluded))}</p>"
    )


def _examples_html(
    f: int, col: np.ndarray, vmax: float, store: ActivationStore, tokenizer, cfg: DashboardConfig
) -> list[str]:
    parts = []
    for label, rows in example_rows(col, cfg, np.random.default_rng(cfg.seed + f)).items():
        parts.append(f"<h2>{html_text(label)}</h2>")
        for r in rows:
            toks, vals, mark = _window(store, tokenizer, r, col, cfg.window)
            parts.append(f'<div class="ex">{float(col[r]):7.3f}  {_tokens_html(toks, vals, vmax, mark)}</div>')
    return parts


def _logits_html(effect: torch.Tensor, tokenizer, cfg: DashboardConfig) -> str:
    tables = "".join(
        f"<div><h3>{html_text(k)}</h3><table>"
        + "".join(f"<tr><td>{html_text(t)}</td><td>{v:+.3f}</td></tr>" for t, v in rows)
        + "</table></div>"
        for k, rows in top_tokens(tokenizer, effect, cfg.logit_k).items()
    )
    return (
        f"<h2>Logit effects</h2><p class=muted>Of the unit decoder direction, {html_text(NORM_HANDLING)}.</p>"
        + _histogram_svg(
            effect.float().numpy(), cfg.histogram_bins, "logit effect over the vocabulary", "logit-histogram"
        )
        + f'<div class="pair logits">{tables}</div>'
    )


def _related_html(f: int, data: PageData, cfg: DashboardConfig) -> str:
    parts = []
    if data.decoder is not None:
        parts.append(
            '<div><h2>Related features</h2><table class="related"><tr><th>feature</th><th>decoder cosine</th>'
            "</tr>"
            + "".join(
                f'<tr><td><a href="{i}.html">{i}</a></td><td>{c:+.3f}</td></tr>'
                for i, c in related_features(data.decoder, f, cfg.related_k)
            )
            + "</table></div>"
        )
    if f in data.neurons:
        j, auc, corr = data.neurons[f]
        parts.append(
            f'<div><h2>Best-aligned {html_text(data.neuron_word)}</h2><p class="neuron">{j}: AUC '
            f'{auc:.3f} for "this feature fires" (either sign); best |correlation| with any {corr:.3f}</p>'
            "</div>"
        )
    return f'<div class="pair">{"".join(parts)}</div>' if parts else ""


def _coactivation_html(f: int, data: PageData, cfg: DashboardConfig) -> str:
    co = coactivations(data.acts, data.counts, data.n_shown, f, cfg.coactivation_k, cfg.coactivation_min_count)
    if not co:
        return ""
    return (
        '<h2>Fires with, above chance</h2><table class="coactivation"><tr><th>feature</th><th>lift P(both) / '
        "(P(this) P(it))</th><th>P(it | this)</th><th>tokens with both</th></tr>"
        + "".join(
            f'<tr><td><a href="{i}.html">{i}</a></td><td>{lift:.2f}</td><td>{p:.2f}</td><td>{c:,}</td></tr>'
            for i, lift, p, c in co
        )
        + "</table>"
    )


def feature_page(
    f: int,
    s: FeatureSummary,
    data: PageData,
    store: ActivationStore,
    tokenizer,
    name: str,
    cfg: DashboardConfig,
    effect: torch.Tensor | None,
) -> bytes:
    """One feature's page; ``effect`` [vocab] is its logit effect (None: no logit section)."""
    col = data.acts[:, f].astype(np.float32)
    parts = [
        f'<p><a href="../index.html">&larr; {html_text(name)}</a></p><h1>Feature {f}</h1>',
        f'<p class="summary">{html_text(s.summary) or "never fires on these tokens"}</p>',
        f'<p class="massive"><b>{html_text(s.massive_note)}</b></p>' if s.massive_note else "",
        f'<p>density <b class="density">{s.density:.3%}</b> · max {s.max_activation:.3f} · mean when active '
        f"{s.mean_when_active:.3f}</p>",
        _stats_line(data),
    ]
    if s.density > 0:
        parts += ["<h2>Activations</h2>", _histogram_svg(col[col > 0], cfg.histogram_bins, "non-zero activations")]
        parts += _examples_html(f, col, s.max_activation, store, tokenizer, cfg)
    if effect is not None:
        parts.append(_logits_html(effect, tokenizer, cfg))
    parts += [_related_html(f, data, cfg), _coactivation_html(f, data, cfg)]
    return _page(f"{name} · feature {f}", "".join(parts))


SEARCH = """<script>
const box = document.getElementById("search");
function filter() {
  const q = box.value.trim().toLowerCase();
  let shown = 0;
  for (const row of document.querySelectorAll("tr.feature")) {
    row.hidden = q !== "" && !row.textContent.toLowerCase().includes(q);
    shown += row.hidden ? 0 : 1;
  }
  document.getElementById("shown").textContent = shown.toLocaleString();
}
box.addEventListener("input", filter);
if (location.hash.startsWith("#q=")) { box.value = decodeURIComponent(location.hash.slice(3)); }
filter();
</script>"""


def index_rows(summaries: list[FeatureSummary]) -> list[FeatureSummary]:
    """The index's order: by density, features flagged as firing mostly on massive-activation rows last."""
    return sorted(summaries, key=lambda s: (s.flagged, -s.density))


def index_page(name: str, summaries: list[FeatureSummary], pages: set[int], n_tokens: int, n_excluded: int) -> bytes:
    rows = []
    for s in index_rows(summaries):
        link = f'<a href="features/{s.feature}.html">{s.feature}</a>' if s.feature in pages else str(s.feature)
        flag = f' <b class="flag">{MASSIVE_FLAG}</b>' if s.flagged else ""
        rows.append(
            f'<tr class="feature"><td>{link}</td><td>{s.density:.3%}</td><td>{s.max_activation:.3f}</td>'
            f"<td>{html_text(s.summary) or '<span class=muted>dead</span>'}{flag}</td></tr>"
        )
    dead = sum(s.density == 0 for s in summaries)
    flagged = sum(s.flagged for s in summaries)
    body = (
        f"<h1>{html_text(name)}</h1><p>{len(summaries):,} features; statistics over <b class=tokens>"
        f"{n_tokens:,}</b> tokens; {html_text(excluded_line(n_excluded))} {dead:,} never fire on the tokens "
        f"shown; {flagged:,} {MASSIVE_FLAG} (listed last). Sorted by density; a linked feature has a page.</p>"
        '<p><label>Search <input id="search" type="search" placeholder="feature number or summary text" '
        'size="40"></label> <span class="muted"><span id="shown">' + f"{len(summaries):,}" + "</span> shown"
        "</span></p><table><tr><th>feature</th><th>density</th><th>max</th><th>summary (offline token explainer)"
        f"</th></tr>{''.join(rows)}</table>{SEARCH}"
    )
    return _page(name, body)


def _page_data(
    sae,
    acts: np.ndarray,
    mask: np.ndarray,
    n_excluded: int,
    store: ActivationStore,
    hook: str,
    pages: Sequence[int],
    cfg: DashboardConfig,
) -> PageData:
    with torch.no_grad():  # unit decoder directions [n_features, d_in] in raw activation space
        decoder = sae.dictionary()
        decoder = torch.nn.functional.normalize((decoder[0] if decoder.ndim == 3 else decoder).float(), dim=-1)
    return PageData(
        acts,
        (acts > 0).sum(0),
        int(mask.sum()),
        n_excluded,
        decoder.cpu(),
        neuron_alignment(acts, mask, store, hook, pages, cfg),
        neuron_word(hook),
    )


def export_dashboard(
    sae,
    store: ActivationStore,
    hook: str,
    tokenizer,
    out: Path,
    name: str,
    features: Sequence[int] | None = None,
    lens: Callable[[torch.Tensor], torch.Tensor] | None = None,
    cfg: DashboardConfig = DashboardConfig(),
) -> Path:
    """Write the dashboard of ``sae`` (one member) at ``hook`` on ``store`` to ``out``, replacing an earlier
    dashboard there as a whole; returns index.html. ``out`` must be new, empty or a dashboard (checked first).

    ``features``: the features given a page (default: every feature); ``lens``: decoder directions -> logit
    effects (``logit_lens(model, hook)``), omitted when None."""
    if sae.cfg.n_models != 1:
        raise ValueError("export one member of an ensemble: sae.member(i)")
    n_features = int(sae.cfg.n_features)
    pages = sorted(set(range(n_features) if features is None else (int(f) for f in features)))
    if pages and not 0 <= pages[0] <= pages[-1] < n_features:
        raise ValueError(f"features must lie in [0, {n_features}); got {pages[0]}..{pages[-1]}")
    out = Path(out)
    _check_replaceable(out)
    acts, mask = feature_matrix(sae, store, hook, cfg.max_rows, leave_out_massive=True)
    massive = massive_rows_read(store, mask)
    summaries = summarize_features(acts, mask, store, tokenizer, cfg, massive_activations(store, hook, sae, massive))
    data = _page_data(sae, acts, mask, len(massive), store, hook, pages, cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_temporaries(out)
    new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        (new / "features").mkdir()
        for start in range(0, len(pages), 256):  # logit effects [chunk, vocab] a chunk at a time
            chunk = pages[start : start + 256]
            decoder = cast(torch.Tensor, data.decoder)  # _page_data always holds the decoder
            effects = None if lens is None else lens(decoder[chunk]).cpu()
            for j, f in enumerate(chunk):
                atomic_write_bytes(
                    new / "features" / f"{f}.html",
                    feature_page(
                        f, summaries[f], data, store, tokenizer, name, cfg, None if effects is None else effects[j]
                    ),
                )
        atomic_write_json(new / "features.json", [{**s.__dict__, "flagged": s.flagged} for s in summaries])
        atomic_write_bytes(new / "index.html", index_page(name, summaries, set(pages), data.n_shown, len(massive)))
        atomic_write_bytes(new / MARKER, b"a folder written by saelib.interp.dashboard.export_dashboard\n")
        _switch(new, out)
    finally:
        shutil.rmtree(new, ignore_errors=True)
    return out / "index.html"


def _is_dashboard(folder: Path) -> bool:
    """Whether ``folder`` (a real folder) holds an export: its marker, or only the files an export writes."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    names = {p.name for p in folder.iterdir()}
    return MARKER in names or ("index.html" in names and names <= _PAGES)


def _check_replaceable(out: Path) -> None:
    """An error, before anything is written, if ``out`` exists and is neither empty nor a dashboard."""
    if out.is_symlink() or out.exists() and not (out.is_dir() and (_is_dashboard(out) or not any(out.iterdir()))):
        raise FileExistsError(
            f"{out} exists and is not a dashboard export (no {MARKER} file): the export replaces "
            "its folder as a whole, so it writes only to a new folder, an empty one or an earlier "
            "dashboard. Choose another output folder (--out) or move this one away"
        )


def _remove_temporaries(out: Path) -> None:
    """Remove the new and old folders that a killed export of ``out`` left beside it."""
    for pattern in (f".{out.name}.new-*", f".{out.name}.old-*"):
        for folder in out.parent.glob(pattern):
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder)


def _switch(new: Path, out: Path) -> None:
    """Put the folder ``new`` in place of ``out`` by renames; the previous ``out`` is moved aside, then removed."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent)) / out.name
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old.parent)
