"""What a feature responds to: its activations over an activation store, its top activating contexts, and a view of
them (circuitsvis, self-contained).

A *dictionary* here is anything that maps activations to non-negative feature activations: a one-member ``SAE``
(``saelib.dictionaries.sae``) or a ``LinearDictionary`` (``saelib.baselines.directions``); ``feature_codes`` hides the difference.

Massive-activation rows (norm at the hook above ``OUTLIER_NORM_RATIO`` x the median norm: the rule training uses,
``saelib.dictionaries.train.row_mask``) are left out of what is shown, as position 0 and separators are; a view says
how many rows were left out, and flags a feature whose activation mass lies mostly on them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from IPython.display import HTML

from saelib.activations.store import ActivationStore
from saelib.dictionaries.sae import SAE
from saelib.dictionaries.train import OUTLIER_NORM_RATIO, TrainConfig, row_mask
from saelib.interp.tokens import html_text, readable_tokens, visible_controls


def feature_codes(dictionary, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
    """Feature activations [..., n_features] of ``dictionary`` for raw activations x [..., d_in]; with ``features``
    (indices [k]) only those columns, [..., k], computed alone where the dictionary allows it."""
    with torch.no_grad():
        if features is None:  # an SAE and a LinearDictionary share encode and encode_features
            return dictionary.encode(x.float())
        return dictionary.encode_features(x.float(), features)


def dictionary_width(dictionary) -> int:
    """d_in of an SAE or a ``LinearDictionary``."""
    return int(dictionary.cfg.d_in) if isinstance(dictionary, SAE) else int(dictionary.d_in)


def dictionary_size(dictionary) -> int:
    """Number of features of an SAE or a ``LinearDictionary``."""
    return int(dictionary.cfg.n_features) if isinstance(dictionary, SAE) else int(dictionary.n_features)


def ordinary_rows(store: ActivationStore) -> np.ndarray:
    """[n_rows] bool: rows that are neither position 0 nor the document separator. Both carry activations tens of
    times an ordinary token's (notebook 00), so they are left out of feature statistics as they are of training."""
    pos = np.arange(store.n_rows) % store.context_length
    return (pos != 0) & (np.asarray(store.tokens).reshape(-1) != store.config.get("separator_id", -1))


MASSIVE_RULE = f"norm at the hook above {OUTLIER_NORM_RATIO:g}x the median norm, the rule training uses"
MASSIVE_FLAG = "fires mostly on massive-activation rows"
MASSIVE_SHARE = 0.5  # a feature with more than this share of its activation mass on massive rows is flagged


def shown_rows(store: ActivationStore, hook: str) -> np.ndarray:
    """[n_rows] bool: ordinary rows that are not massive-activation rows at ``hook`` (training's row rule)."""
    return row_mask(store, TrainConfig(hook, outlier_norm_ratio=OUTLIER_NORM_RATIO))


def massive_share(kept: np.ndarray, on_massive: np.ndarray) -> float:
    """Share of a feature's activation mass that lies on massive-activation rows: ``on_massive`` [m] against the
    shown rows' ``kept`` [n] (0 for a feature that never fires)."""
    out, inside = float(np.clip(on_massive, 0, None).sum()), float(np.clip(kept, 0, None).sum())
    return out / (out + inside) if out + inside > 0 else 0.0


def massive_note(kept: np.ndarray, on_massive: np.ndarray) -> str:
    """What a reader is told about a feature's activations on the massive-activation rows left out: the flag when
    most of its mass lies there, the left-out peak when it tops the shown ones, else ""."""
    peak = float(np.max(on_massive, initial=0.0))
    share = massive_share(kept, on_massive)
    if share > MASSIVE_SHARE:
        return f"{MASSIVE_FLAG} ({share:.0%} of its activation mass; largest there {peak:.2f}, left out)"
    if peak > float(np.max(kept, initial=0.0)):
        return f"its largest activation, {peak:.2f}, is on a massive-activation row (left out)"
    return ""


class ShownActivations(np.ndarray):
    """Feature activations [n_rows, k] (or one column, [n_rows]) with massive-activation rows set to 0, carrying
    what those rows hold: ``massive`` (their row indices [m]) and ``on_massive`` ([m, k], or [m] for a column).
    Selecting columns (``acts[:, j]``) keeps both; any other operation gives an array without them."""

    massive: np.ndarray | None = None
    on_massive: np.ndarray | None = None

    def __array_finalize__(self, obj: object) -> None:
        self.massive, self.on_massive = None, None

    def __getitem__(self, key: Any) -> Any:
        out = super().__getitem__(key)
        if (
            isinstance(out, ShownActivations)
            and self.on_massive is not None
            and self.ndim == 2
            and isinstance(key, tuple)
            and len(key) == 2
            and isinstance(key[0], slice)
            and key[0] == slice(None)
        ):
            out.massive, out.on_massive = self.massive, self.on_massive[:, key[1]]
        return out


def _codes(
    store: ActivationStore, hook: str, dictionary, rows: slice | np.ndarray, cols: torch.Tensor | None
) -> np.ndarray:
    x = torch.from_numpy(np.asarray(store.activations(hook)[rows], np.float32))
    return feature_codes(dictionary, x, cols).numpy()


def massive_activations(
    store: ActivationStore, hook: str, dictionary, rows: np.ndarray, features: Sequence[int] | None = None
) -> np.ndarray:
    """[len(rows), k] float32 activations of ``features`` (all when None) on ``rows`` (the massive-activation rows:
    few, so read at once)."""
    cols = None if features is None else torch.as_tensor(list(features), dtype=torch.long)
    width = dictionary_size(dictionary) if features is None else len(features)
    if len(rows) == 0:
        return np.zeros((0, width), np.float32)
    return _codes(store, hook, dictionary, np.sort(rows), cols)


def feature_activations(
    store: ActivationStore,
    hook: str,
    dictionary,
    features: Sequence[int] | None = None,
    row_mask: np.ndarray | None = None,
    batch_rows: int = 8192,
) -> np.ndarray:
    """[n_rows, n_selected] float32 activations of ``features`` (all when None) at every row of ``store``; rows
    outside ``row_mask`` are 0. By default the mask is ``shown_rows`` and the result a ``ShownActivations`` that
    carries the activations on the massive-activation rows left out (``top_contexts`` reports them)."""
    mask = shown_rows(store, hook) if row_mask is None else row_mask
    cols = None if features is None else torch.as_tensor(list(features), dtype=torch.long)
    out = np.concatenate(
        [
            _codes(store, hook, dictionary, slice(start, start + batch_rows), cols)
            for start in range(0, store.n_rows, batch_rows)
        ]
    )
    if row_mask is None:
        massive = np.flatnonzero(ordinary_rows(store) & ~mask)
        on_massive = out[massive].copy()
        shown = out.view(ShownActivations)
        shown.massive, shown.on_massive = massive, on_massive
        out = shown
    out[~mask] = 0.0
    return out


@dataclass(frozen=True)
class Context:
    """A window of text around one activation of a feature."""

    tokens: list[str]
    values: list[float]  # the feature's activation at each token
    peak: float
    source: str  # corpus source of the document
    context: int  # index of the packed context in the store
    position: int  # position of the peak in that context


class TopContexts(list):
    """``top_contexts``' list of ``Context``, with what the view says about the rows left out: ``excluded``, the
    number of massive-activation rows left out (None when unknown), and ``note`` (``massive_note``)."""

    def __init__(self, contexts: Sequence[Context], excluded: int | None = None, note: str = "") -> None:
        super().__init__(contexts)
        self.excluded, self.note = excluded, note


def top_contexts(
    store: ActivationStore, acts: np.ndarray, tokenizer, k: int = 5, before: int = 24, after: int = 8
) -> TopContexts:
    """The ``k`` highest activations of one feature (``acts`` [n_rows], e.g. a column of ``feature_activations``),
    at most one per packed context, each with ``before`` tokens of context and ``after`` tokens following. From a
    ``ShownActivations`` column, the result also counts and describes the massive-activation rows left out."""
    massive, on_massive = getattr(acts, "massive", None), getattr(acts, "on_massive", None)
    acts = np.asarray(acts, dtype=np.float32)
    if acts.shape != (store.n_rows,):
        raise ValueError(f"acts has shape {acts.shape}; expected one value per store row ({store.n_rows},)")
    per_ctx = acts.reshape(-1, store.context_length)
    best_pos = per_ctx.argmax(axis=1)
    best = per_ctx[np.arange(len(per_ctx)), best_pos]
    order = [int(c) for c in np.argsort(-best, kind="stable")[:k] if best[c] > 0]
    out = []
    for c in order:
        p = int(best_pos[c])
        lo, hi = max(0, p - before), min(store.context_length, p + after + 1)
        prov = store.provenance(np.array([c * store.context_length + p]))
        out.append(
            Context(
                readable_tokens(tokenizer, store.tokens[c, lo:hi]),
                per_ctx[c, lo:hi].tolist(),
                float(best[c]),
                prov.source[0],
                c,
                p,
            )
        )
    if massive is None or on_massive is None or np.ndim(on_massive) != 1:
        return TopContexts(out)
    return TopContexts(out, len(massive), massive_note(acts, np.asarray(on_massive, np.float32)))


def excluded_line(excluded: int) -> str:
    """The sentence a view or a dashboard page states about the rows left out."""
    return f"{excluded:,} massive-activation row{'s' if excluded != 1 else ''} left out ({MASSIVE_RULE})."


@dataclass(frozen=True)
class FeatureView:
    """One feature's panel: a title, an optional note (e.g. its explanation) and its top contexts."""

    title: str
    contexts: list[Context]
    note: str = ""


def _bundle_script() -> str:
    """circuitsvis' inlined JavaScript bundle (about 1.3 MB), with its own render call cut off."""
    import circuitsvis as cv

    src = cv.tokens.colored_tokens(tokens=["."], values=[0.0]).local_src
    head = src[src.index("<script") : src.rindex("CircuitsVis.render(")]
    return head


def _plain_context(c: Context) -> str:
    """The context as escaped text with its peak token in bold brackets: what a reader sees without JavaScript."""
    peak = int(np.argmax(c.values)) if c.values else -1
    return "".join(f"<b>[{html_text(t)}]</b>" if i == peak else html_text(t) for i, t in enumerate(c.tokens))


_view_calls = itertools.count()  # ids must differ between outputs, even across notebooks: JupyterLab has one DOM


def _view_id(views: Sequence[FeatureView]) -> str:
    """An id for one ``feature_views`` output: a hash of its content and of the call's number in this process, so
    that a notebook re-run from the top writes the same HTML (no churn in committed outputs), while two outputs in
    one kernel never share ids."""
    content = json.dumps([[v.title, [[c.tokens, c.values] for c in v.contexts]] for v in views])
    return hashlib.sha1(f"{next(_view_calls)}:{content}".encode()).hexdigest()[:8]


def feature_views(views: Sequence[FeatureView], max_tokens_width: str = "100%") -> HTML:
    """Panels of top contexts, tokens coloured by activation (one colour scale per feature), as one self-contained
    HTML output. The circuitsvis bundle is inlined once for all panels: ``local_src`` per context would add 1.3 MB
    each to the notebook."""
    body, calls = [], []
    uid = _view_id(views)
    body.append(
        f'<p class="saelib-fallback-{uid}" style="color:#a00"><small>Interactive token view not shown: this '
        f"notebook is not trusted or its JavaScript did not run. Plain text follows, peak token in "
        f"<b>[brackets]</b>. Trust it with <code>.venv/bin/jupyter trust notebooks/*.ipynb</code> (or run "
        f"<i>Trust Notebook</i> from the JupyterLab Command Palette, Ctrl+Shift+C) and reopen it.</small></p>"
    )
    for v, view in enumerate(views):
        body.append(f"<h4>{html_text(view.title)}</h4>")
        if view.note:
            body.append(f"<p>{html_text(view.note)}</p>")
        note = getattr(view.contexts, "note", "")  # a TopContexts carries these; a plain list of contexts does not
        if note:
            body.append(f'<p class="massive"><b>{html_text(note)}</b></p>')
        excluded = getattr(view.contexts, "excluded", None)
        if excluded is not None:
            body.append(f'<p class="excluded"><small>{html_text(excluded_line(excluded))}</small></p>')
        if not view.contexts:
            body.append("<p><i>never active on these tokens</i></p>")
        vmax = max((c.peak for c in view.contexts), default=1.0) or 1.0
        for i, c in enumerate(view.contexts):
            div = f"saelib-view-{uid}-{v}-{i}"
            body.append(
                f'<div style="max-width:{max_tokens_width}"><small>peak {c.peak:.2f} · '
                f'{html_text(c.source)}</small><div id="{div}"></div>'
                f'<div class="saelib-fallback-{uid}"><code>{_plain_context(c)}</code></div></div>'
            )
            props = {
                "tokens": [visible_controls(t) for t in c.tokens],
                "values": c.values,
                "minValue": 0.0,
                "maxValue": vmax,
            }
            calls.append(f"CircuitsVis.render({json.dumps(div)}, CircuitsVis.ColoredTokens, {json.dumps(props)});")
    hide = f"document.querySelectorAll('.saelib-fallback-{uid}').forEach(e => e.remove());"  # JS ran: views drawn
    script = _bundle_script() + "\n".join(calls) + "\n" + hide + "\n</script>" if calls else ""
    return HTML('<div class="cv-view">' + "".join(body) + script + "</div>")
