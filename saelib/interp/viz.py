"""Feature views with circuitsvis, always through ``local_src``.

circuitsvis' default ``_repr_html_`` probes the internet and, when online, emits HTML that loads its bundle from a
CDN; opened offline that output is blank. ``local_src`` inlines the bundle, so a view renders with no network.
"""

from __future__ import annotations

from collections.abc import Sequence

from IPython.display import HTML

from saelib.interp.tokens import visible_controls


def local_html(rendered: object) -> HTML:
    """Wrap a circuitsvis ``RenderedHTML`` so Jupyter shows the self-contained version."""
    src = getattr(rendered, "local_src", None)
    if src is None:
        raise TypeError(f"expected a circuitsvis RenderedHTML, got {type(rendered).__name__}")
    return HTML(f'<div class="cv-view">{src}</div>')


def colored_tokens(tokens: Sequence[str], values: Sequence[float], **kwargs: object) -> HTML:
    """Tokens coloured by a per-token value (e.g. a feature's activation); format characters such as bidirectional
    overrides are shown as their code point (``tokens.visible_controls``)."""
    import circuitsvis as cv

    return local_html(
        cv.tokens.colored_tokens(
            tokens=[visible_controls(t) for t in tokens], values=[float(v) for v in values], **kwargs
        )
    )
