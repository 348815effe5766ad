"""Tokens as a reader should see them: decoded text (``' Mary'``, not ``'ĠMary'``), newlines and tabs visible, and
a character that a byte-level tokenizer split over several tokens shown whole instead of as ``'�'`` pieces."""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterable

NEWLINE, TAB, SPACE = "↵", "⇥", "␣"
CONTINUATION = "◦"  # a token that only completes the character shown on the token before it
_MAX_CHAR_TOKENS = 4  # a UTF-8 character has at most 4 bytes


def visible_whitespace(text: str) -> str:
    """Newlines and tabs as symbols; a token of spaces only as open boxes (it would otherwise look empty)."""
    text = text.replace("\r", "").replace("\n", NEWLINE).replace("\t", TAB)
    return SPACE * len(text) if text and not text.strip(" ") else text


def visible_controls(text: str) -> str:
    """Invisible format characters (Unicode category Cf: the bidirectional controls U+202A-U+202E and U+2066-U+2069,
    marks such as U+200E, zero-width spaces and joiners, the byte-order mark) written as their code point, e.g.
    ``⟨U+202E⟩``: shown, they never reorder or hide the text around them."""
    return "".join(f"⟨U+{ord(c):04X}⟩" if unicodedata.category(c) == "Cf" else c for c in text)


def html_text(text: str) -> str:
    """``text`` (a token, a context, an explanation) for HTML: format characters made visible, then escaped."""
    return html.escape(visible_controls(text))


def readable_tokens(tokenizer, ids: Iterable[int]) -> list[str]:
    """One display string per token id (same length as ``ids``). Where a character spans tokens, the first of them
    shows the whole character and the others show ``◦``; bytes that never form a character keep ``�``."""
    ids = [int(i) for i in ids]
    out: list[str] = []
    i = 0
    while i < len(ids):
        text = tokenizer.decode([ids[i]])
        width = 1
        if "\ufffd" in text:  # an incomplete UTF-8 sequence: extend until it decodes
            for j in range(i + 2, min(len(ids), i + _MAX_CHAR_TOKENS) + 1):
                joined = tokenizer.decode(ids[i:j])
                if "\ufffd" not in joined:
                    text, width = joined, j - i
                    break
        out.append(visible_whitespace(text))
        out.extend([CONTINUATION] * (width - 1))
        i += width
    return out
