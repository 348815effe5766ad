"""Feature dashboards as static HTML: browse a dictionary offline, the way Neuronpedia or SAEDashboard let you.

``export_dashboard`` writes ``index.html`` (every feature with its density, maximum activation and a one-line
auto-summary, sortable by density) and one ``features/<i>.html`` per exported feature: a histogram of its non-zero
activations, examples drawn from quantile bins of its activation range (Bricken et al.'s interval sampling) besides
the top examples, its logit effects (direct path through the unembedding) and the features that fire with it most
often. Pages are plain HTML and inline SVG: no server, no script, no CDN. Token text, summaries and names are
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

import numpy as np
import torch

from saelib.activations.store import ActivationStore
from saelib.core.artifacts import atomic_write_bytes, atomic_write_json
from saelib.interp.explanations import TokenExplainer
from saelib.interp.features import feature_codes, ordinary_rows
from saelib.interp.fragments import Record
from saelib.interp.tokens import html_text, readable_tokens
from saelib.model.lens import top_tokens

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
    quantile_bins: int = 5  # intervals of equal width over (0, max activation], as Bricken et al. sampled
    examples_per_bin: int = 3
    window: int = 12  # tokens shown on each side of the example's token
    histogram_bins: int = 30
    logit_k: int = 10
    coactivation_k: int = 8
    seed: int = 0


@dataclass(frozen=True)
class FeatureSummary:
    feature: int
    density: float  # fraction of ordinary rows where it fires
    max_activation: float
    mean_when_active: float
    summary: str  # the offline explainer's one line on its top examples ("" for a dead feature)


def feature_matrix(sae, store: ActivationStore, hook: str, max_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """[n_rows, n_features] float16 activations on the first ``max_rows`` rows (whole contexts) of ``store`` and the
    [n_rows] mask of ordinary rows (position 0 and separators are set to 0)."""
    n_ctx = max(1, min(store.n_rows, max_rows) // store.context_length)
    n = n_ctx * store.context_length
    arr, mask = store.activations(hook), ordinary_rows(store)[:n]
    chunks = []
    for start in range(0, n, 8192):
        x = torch.from_numpy(np.asarray(arr[start : min(n, start + 8192)], np.float32))
        chunks.append(feature_codes(sae, x).numpy().astype(np.float16))
    acts = np.concatenate(chunks)
    acts[~mask] = 0
    return acts, mask


def _window(store: ActivationStore, tokenizer, row: int, values: np.ndarray, w: int) -> tuple[list[str], np.ndarray, int]:
    ctx, pos = divmod(int(row), store.context_length)
    lo, hi = max(0, pos - w), min(store.context_length, pos + w + 1)
    base = ctx * store.context_length
    return readable_tokens(tokenizer, store.tokens[ctx, lo:hi]), values[base + lo : base + hi].astype(np.float32), pos - lo


def example_rows(col: np.ndarray, cfg: DashboardConfig, rng: np.random.Generator) -> dict[str, list[int]]:
    """Rows to show for one feature's activations ``col`` [n_rows]: the top ones, then up to ``examples_per_bin``
    drawn uniformly from each equal-width activation interval (the highest interval first)."""
    on = np.flatnonzero(col > 0)
    if len(on) == 0:
        return {}
    out = {"top": on[np.argsort(-col[on], kind="stable")[: cfg.top_examples]].tolist()}
    edges = np.linspace(0, float(col[on].max()), cfg.quantile_bins + 1)
    for b in range(cfg.quantile_bins - 1, -1, -1):
        members = on[(col[on] > edges[b]) & (col[on] <= edges[b + 1])]
        if len(members):
            pick = rng.choice(members, size=min(cfg.examples_per_bin, len(members)), replace=False)
            out[f"interval {edges[b]:.2f}-{edges[b + 1]:.2f} ({len(members):,} tokens)"] = sorted(pick.tolist())
    return out


def coactivations(acts: np.ndarray, feature: int, k: int) -> list[tuple[int, float]]:
    """Features most often active where ``feature`` is: (index, P(other fires | feature fires))."""
    on = acts[:, feature] > 0
    if not on.any():
        return []
    p = (acts[on] > 0).mean(0)
    p[feature] = -1
    top = np.argsort(-p, kind="stable")[:k]
    return [(int(i), float(p[i])) for i in top if p[i] > 0]


def summarize_features(acts: np.ndarray, mask: np.ndarray, store: ActivationStore, tokenizer,
                       cfg: DashboardConfig) -> list[FeatureSummary]:
    """Density, max, mean-when-active and the offline explainer's line on each feature's top 5 examples."""
    explainer, n = TokenExplainer(), max(1, int(mask.sum()))
    out = []
    for f in range(acts.shape[1]):
        col = acts[:, f].astype(np.float32)
        on = col > 0
        if not on.any():
            out.append(FeatureSummary(f, 0.0, 0.0, 0.0, ""))
            continue
        top = np.flatnonzero(on)[np.argsort(-col[on], kind="stable")[:5]]
        records = [Record(*_window(store, tokenizer, r, col, cfg.window)[:2]) for r in top]
        out.append(FeatureSummary(f, float(on.sum() / n), float(col.max()), float(col[on].mean()),
                                  explainer.explain(records)))
    return out


def _tokens_html(tokens: Sequence[str], values: np.ndarray, vmax: float, mark: int) -> str:
    spans = []
    for i, (t, v) in enumerate(zip(tokens, values)):
        alpha = 0.0 if vmax <= 0 else min(1.0, max(0.0, float(v) / vmax))
        style = f"background:rgba(230,90,20,{alpha:.2f})" + (";outline:1px solid #333" if i == mark else "")
        spans.append(f'<span style="{style}" title="{float(v):.3f}">{html_text(t)}</span>')
    return "".join(spans)


def _histogram_svg(values: np.ndarray, bins: int, width: int = 520, height: int = 140) -> str:
    counts, edges = np.histogram(values, bins=bins)
    scale = np.log1p(counts) / max(np.log1p(counts).max(), 1e-9)
    bw = width / bins
    bars = "".join(f'<rect x="{i * bw:.1f}" y="{height - 20 - s * (height - 30):.1f}" width="{bw - 1:.1f}" '
                   f'height="{s * (height - 30):.1f}" fill="#e65a14"><title>{edges[i]:.3f}-{edges[i + 1]:.3f}: '
                   f'{c:,}</title></rect>' for i, (c, s) in enumerate(zip(counts, scale)))
    return (f'<svg class="histogram" width="{width}" height="{height}" role="img" aria-label="activation histogram">'
            f'{bars}<text x="0" y="{height - 4}" font-size="11">{edges[0]:.2f}</text>'
            f'<text x="{width - 40}" y="{height - 4}" font-size="11">{edges[-1]:.2f}</text></svg>'
            '<div class="muted">non-zero activations, log count per bin</div>')


def _page(title: str, body: str) -> bytes:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html_text(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>").encode()


def feature_page(f: int, s: FeatureSummary, acts: np.ndarray, store: ActivationStore, tokenizer, name: str,
                 cfg: DashboardConfig, logits: dict[str, list[tuple[str, float]]] | None) -> bytes:
    col = acts[:, f].astype(np.float32)
    parts = [f'<p><a href="../index.html">&larr; {html_text(name)}</a></p><h1>Feature {f}</h1>',
             f'<p class="summary">{html_text(s.summary) or "never fires on these tokens"}</p>',
             f'<p>density <b class="density">{s.density:.3%}</b> · max {s.max_activation:.3f} · mean when active '
             f'{s.mean_when_active:.3f}</p>']
    if s.density > 0:
        parts += ["<h2>Activations</h2>", _histogram_svg(col[col > 0], cfg.histogram_bins)]
        rng = np.random.default_rng(cfg.seed + f)
        for label, rows in example_rows(col, cfg, rng).items():
            parts.append(f"<h2>{html_text(label)}</h2>")
            for r in rows:
                toks, vals, mark = _window(store, tokenizer, r, col, cfg.window)
                parts.append(f'<div class="ex">{float(col[r]):7.3f}  {_tokens_html(toks, vals, s.max_activation, mark)}</div>')
    if logits:
        cols = "".join(f"<div><h2>{html_text(k)}</h2><table>" + "".join(
            f"<tr><td>{html_text(t)}</td><td>{v:+.3f}</td></tr>" for t, v in rows) + "</table></div>"
            for k, rows in logits.items())
        parts.append(f'<div class="pair logits">{cols}</div>')
    co = coactivations(acts, f, cfg.coactivation_k)
    if co:
        parts.append("<h2>Fires most often with</h2><table><tr><th>feature</th><th>P(it fires | this fires)</th></tr>"
                     + "".join(f'<tr><td><a href="{i}.html">{i}</a></td><td>{p:.2f}</td></tr>' for i, p in co)
                     + "</table>")
    return _page(f"{name} · feature {f}", "".join(parts))


def index_page(name: str, summaries: list[FeatureSummary], pages: set[int], n_tokens: int) -> bytes:
    rows = []
    for s in sorted(summaries, key=lambda s: -s.density):
        link = f'<a href="features/{s.feature}.html">{s.feature}</a>' if s.feature in pages else str(s.feature)
        rows.append(f'<tr class="feature"><td>{link}</td><td>{s.density:.3%}</td><td>{s.max_activation:.3f}</td>'
                    f'<td>{html_text(s.summary) or "<span class=muted>dead</span>"}</td></tr>')
    dead = sum(s.density == 0 for s in summaries)
    body = (f"<h1>{html_text(name)}</h1><p>{len(summaries):,} features over {n_tokens:,} tokens; {dead:,} never "
            f"fire. Sorted by density; a linked feature has a page.</p><table><tr><th>feature</th><th>density</th>"
            f"<th>max</th><th>summary (offline token explainer)</th></tr>{''.join(rows)}</table>")
    return _page(name, body)


def export_dashboard(sae, store: ActivationStore, hook: str, tokenizer, out: Path, name: str,
                     features: Sequence[int] | None = None, lens: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     cfg: DashboardConfig = DashboardConfig()) -> Path:
    """Write the dashboard of ``sae`` (one member) at ``hook`` on ``store`` to ``out``, replacing an earlier
    dashboard there as a whole; returns index.html. ``out`` must be new, empty or a dashboard (checked first).

    ``features``: the features given a page (default: every feature); ``lens``: decoder directions -> logit
    effects (``logit_lens(model, hook)``), omitted when None."""
    if sae.cfg.n_models != 1:
        raise ValueError("export one member of an ensemble: sae.member(i)")
    acts, mask = feature_matrix(sae, store, hook, cfg.max_rows)
    n_features = acts.shape[1]
    pages = sorted(set(range(n_features) if features is None else (int(f) for f in features)))
    if pages and not 0 <= pages[0] <= pages[-1] < n_features:
        raise ValueError(f"features must lie in [0, {n_features}); got {pages[0]}..{pages[-1]}")
    out = Path(out)
    _check_replaceable(out)
    summaries = summarize_features(acts, mask, store, tokenizer, cfg)
    effects = None
    if lens is not None:
        with torch.no_grad():  # unit decoder directions [n_features, d_in] in raw activation space
            decoder = sae.dictionary()
            decoder = decoder[0] if decoder.ndim == 3 else decoder
            effects = lens(torch.nn.functional.normalize(decoder[pages].float(), dim=-1))
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_temporaries(out)
    new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        (new / "features").mkdir()
        for j, f in enumerate(pages):
            logits = None
            if effects is not None:
                logits = top_tokens(tokenizer, effects[j], cfg.logit_k)
            atomic_write_bytes(new / "features" / f"{f}.html",
                               feature_page(f, summaries[f], acts, store, tokenizer, name, cfg, logits))
        atomic_write_json(new / "features.json", [s.__dict__ for s in summaries])
        atomic_write_bytes(new / "index.html", index_page(name, summaries, set(pages), int(mask.sum())))
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
        raise FileExistsError(f"{out} exists and is not a dashboard export (no {MARKER} file): the export replaces "
                              "its folder as a whole, so it writes only to a new folder, an empty one or an earlier "
                              "dashboard. Choose another output folder (--out) or move this one away")


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
