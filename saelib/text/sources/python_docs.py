"""The Python 3.11 documentation's reST sources turned into plain text by a small reST reader."""

from __future__ import annotations

import itertools
import re
import textwrap
from collections.abc import Iterable, Iterator, Sequence

from saelib.text.sources.archives import deb_files, find_archive
from saelib.text.sources.base import Document
from saelib.text.sources.cleaning import normalise

_INLINE = re.compile(
    r"``(?P<lit>.+?)``"
    r"|:(?:[\w.+-]+:)*(?P<role>[\w.+-]+):`(?P<rbody>[^`]*)`"
    r"|`(?P<link>[^`<]*?)\s*(?:<(?P<url>[^`>]*)>)?`__?(?!\w)"
    r"|`(?P<interp>[^`]+)`"
    r"|\*\*(?P<strong>[^\s*](?:.*?[^\s*])??)\*\*"
    r"|(?<![\w*\\])\*(?P<emph>[^\s*](?:[^*]*?[^\s*])?)\*(?![\w*])"
    r"|(?<![\w|])\|(?P<subst>\w[\w .-]*?)\|_{0,2}(?![\w|])"
    r"|\s?\[(?:#[\w-]*|\d+|\*)\]_"
    r"|\\(?P<esc>.)",
    re.DOTALL,
)
_ROLE_PREFIX = {"issue": "bpo-", "gh": "gh-", "pep": "PEP ", "rfc": "RFC ", "cve": "CVE-"}


def role_text(role: str, body: str) -> str:
    """What Sphinx displays for ``:role:`body```: the explicit title of ``text <target>``, the last component for
    ``~a.b.c``, ``PEP 8`` for ``:pep:`8```; variable braces of ``:samp:`` dropped."""
    body = body.replace("\\ ", "")
    if m := re.fullmatch(r"(.+?)\s*<[^<>]*>", body, re.DOTALL):
        return m.group(1)
    body = body.lstrip("!")
    if body.startswith("~"):
        body = body[1:].rsplit(".", 1)[-1]
    if role in _ROLE_PREFIX:
        return _ROLE_PREFIX[role] + body.split("#")[0]
    return body.replace("{", "").replace("}", "") if role == "samp" else body


def _inline_sub(m: re.Match[str]) -> str:
    g = m.groupdict()
    if g["lit"] is not None:
        return g["lit"]
    if g["role"] is not None:
        return role_text(g["role"], g["rbody"])
    if g["link"] is not None:
        return g["link"] or g["url"] or ""
    for key in ("interp", "strong", "emph", "subst"):
        if g[key] is not None:
            return g[key]
    if g["esc"] is not None:
        return "" if g["esc"].isspace() else g["esc"]
    return ""  # footnote reference


def clean_rst_inline(text: str) -> str:
    """reST inline markup -> plain text: roles, literals, links, emphasis, footnote references, escapes."""
    return _INLINE.sub(_inline_sub, text)


_DIRECTIVE = re.compile(r"^(?P<ind>\s*)\.\.\s+(?P<name>[\w:.-]+)::(?:\s+(?P<args>.*))?$")
_FOOTNOTE = re.compile(r"^\s*\.\.\s+\[[^\]]+\]\s+(?P<text>.*)$")
_OPTION = re.compile(r"^\s+:[\w-]+:(?:\s.*)?$")
_BULLET = re.compile(r"^(?:[-*+•]|#\.|\d+\.|\(?[a-zA-Z0-9]\))\s+")
_RULE = re.compile(r"([^\w\s])\1{2,}|(?=.*[=-])[+=\-| :]{3,}")
# directives whose line and body produce no text (index entries, module metadata, tables of contents, images...)
DROP_DIRECTIVES = frozenset(
    [
        "index",
        "highlight",
        "module",
        "currentmodule",
        "moduleauthor",
        "sectionauthor",
        "toctree",
        "image",
        "figure",
        "raw",
        "include",
        "literalinclude",
        "testsetup",
        "testcleanup",
        "tabularcolumns",
        "productionlist",
        "audit-event",
        "program",
        "default-role",
        "role",
        "contents",
        "c:namespace-push",
        "c:namespace-pop",
        "miscnews",
        "limited-api-list",
        "audit-event-table",  # filled from files the package does not ship
    ]
)
CODE_DIRECTIVES = frozenset(["code-block", "sourcecode", "code", "doctest", "testcode", "testoutput", "parsed-literal"])
BODY_ONLY_DIRECTIVES = frozenset(
    ["only", "ifconfig", "container", "topic", "sidebar", "compound", "epigraph", "glossary"]
)
ADMONITIONS = {
    "note": "Note:",
    "warning": "Warning:",
    "seealso": "See also:",
    "important": "Important:",
    "tip": "Tip:",
    "caution": "Caution:",
    "attention": "Attention:",
    "danger": "Danger:",
    "hint": "Hint:",
    "admonition": "",
    "impl-detail": "CPython implementation detail:",
    "availability": "Availability:",
}
VERSION_LABELS = {
    "versionadded": "New in version {}.",
    "versionchanged": "Changed in version {}.",
    "deprecated": "Deprecated since version {}.",
    "deprecated-removed": "Deprecated since version {}, removed in {}.",
}
SIGNATURE_DIRECTIVES = frozenset(
    [
        "function",
        "method",
        "class",
        "data",
        "attribute",
        "exception",
        "decorator",
        "decoratormethod",
        "classmethod",
        "staticmethod",
        "coroutinefunction",
        "coroutinemethod",
        "abstractmethod",
        "property",
        "opcode",
        "pdbcommand",
        "option",
        "cmdoption",
        "envvar",
        "describe",
        "macro",
        "member",
        "type",
        "var",
        "object",
    ]
)


def version_label(name: str, args: str) -> tuple[str, str]:
    """("Changed in version 3.8.", text after the version) for versionadded/-changed/deprecated(-removed)."""
    words = args.split()
    n = VERSION_LABELS[name].count("{}")
    versions = (words + ["?"] * n)[:n]
    return VERSION_LABELS[name].format(*versions), " ".join(words[n:])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _skip_body(lines: Sequence[str], i: int, base: int) -> int:
    """Index after the indented body (lines deeper than ``base``, plus blank lines) starting at ``i``."""
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
        i += 1
    return i


def _literal_end(lines: Sequence[str], i: int, base: int) -> tuple[int, str]:
    """(end index, dedented text) of the literal block indented deeper than ``base`` starting at ``i``."""
    end = _skip_body(lines, i, base)
    return end, textwrap.dedent("\n".join(lines[i:end])).strip("\n")


_GRID_BORDER = re.compile(r"\+[-=+]+\+")
_SIMPLE_BORDER = re.compile(r"=+(?: +=+)+")


def _cell_text(parts: Iterable[str]) -> str:
    """A table cell's lines as one string, without line-block bars or a leading directive (``.. c:macro::``)."""
    parts = (re.sub(r"^\|(?:\s+|$)|^\.\.\s+[\w:.-]+::\s*", "", p.strip()) for p in parts)
    return " ".join(p for p in parts if p)


class _RstReader:
    """Line-oriented reST -> blocks of ("prose" | "code" | "table", text): keeps prose, code, signatures, tables
    and admonition labels; drops comments, targets, index/toctree-like directives, underlines and table borders."""

    def __init__(self, text: str) -> None:
        self.lines = normalise(text.expandtabs(8)).split("\n")
        self.blocks: list[tuple[str, str]] = []
        self.para: list[str] = []
        self.prefix = ""  # admonition/version label waiting for the first paragraph of its body
        self.para_indent = 0  # indent of the paragraph's first line
        self.content_indent = 0  # indent of its text (after a bullet marker): a "::" literal must be deeper
        self.para_bullet = False

    def emit(self, kind: str, text: str) -> None:
        """Append a block; a pending label not claimed by a paragraph is emitted on its own first."""
        if self.prefix and kind != "prose":
            self.blocks.append(("prose", self.prefix))
        elif self.prefix:
            text = f"{self.prefix} {text}"
        self.prefix = ""
        if text.strip():
            self.blocks.append((kind, text))

    def flush(self) -> None:
        if self.para:
            self.emit("prose", " ".join(self.para))
            self.para = []

    def add(self, line: str, indent: int) -> None:
        """Add a prose line; a bullet starts a new paragraph unless it is inside running text (reST needs a blank
        line before a list, so "+ 1.20" continuing a sentence is not an item)."""
        bullet = _BULLET.match(line)
        if bullet and self.para and self.para_bullet and indent <= self.para_indent:
            self.flush()
        if not self.para:
            self.para_indent, self.para_bullet = indent, bool(bullet)
            self.content_indent = indent + (bullet.end() if bullet else 0)
        self.para.append(line)

    def literal(self, i: int, base: int) -> int:
        end, code = _literal_end(self.lines, i, base)
        self.emit("code", code)
        return end

    def has_body(self, j: int, indent: int) -> bool:
        k = next((k for k in range(j, len(self.lines)) if self.lines[k].strip()), len(self.lines))
        return k < len(self.lines) and _indent(self.lines[k]) > indent

    def directive(self, i: int, m: re.Match[str]) -> int:
        name, args, ind = m["name"], (m["args"] or "").strip(), len(m["ind"])
        j = i + 1
        while j < len(self.lines) and _OPTION.match(self.lines[j]) and _indent(self.lines[j]) > ind:
            j += 1
        if name in DROP_DIRECTIVES:
            return _skip_body(self.lines, j, ind)
        if name in CODE_DIRECTIVES:
            return self.literal(j, ind)
        if name in VERSION_LABELS or name in ADMONITIONS:
            label, rest = version_label(name, args) if name in VERSION_LABELS else (ADMONITIONS[name], args)
            self.prefix = label
            if rest:
                self.add(rest, ind + 3)
            elif not self.has_body(j, ind):
                self.emit("prose", "")
        elif args and name not in BODY_ONLY_DIRECTIVES:
            # a signature (function, class, data...) stays verbatim; other arguments (rubric, table title) are prose
            self.emit("code" if name.split(":")[-1] in SIGNATURE_DIRECTIVES else "prose", args)
        return j

    def grid_table(self, i: int) -> int:
        """A grid table (+---+ borders) as a "table" block, a line per row with each cell's lines joined. Column
        edges come from the border with most "+"; a row line is cut only where it has a "|" at an edge (spans)."""
        ind = _indent(self.lines[i])
        j = i
        while j < len(self.lines) and self.lines[j].strip()[:1] in ("+", "|"):
            j += 1
        table = [x[ind:].rstrip() for x in self.lines[i:j]]
        edges = max(([k for k, ch in enumerate(x) if ch == "+"] for x in table if x.startswith("+")), key=len)
        rows: list[list[list[str]]] = []
        cells: dict[int, list[str]] = {}  # cell start column -> its lines, for the current row
        for body in table[1:] + ["+"]:
            if body.startswith("+"):
                rows.append(list(cells.values()))
                cells = {}
                continue
            cuts = [e for e in edges if e < len(body) and body[e] == "|"] + [len(body)]
            for a, b in itertools.pairwise(cuts):
                cells.setdefault(a, []).append(body[a + 1 : b])
        self.emit_table(rows)
        return j

    def simple_table(self, i: int) -> int:
        """A simple table (==== borders): a line whose first column is blank continues the previous row."""
        ind = _indent(self.lines[i])
        starts = [m.start() for m in re.finditer(r"=+", self.lines[i][ind:])]
        rows: list[list[list[str]]] = []
        j = i + 1
        while j < len(self.lines) and (not self.lines[j].strip() or _indent(self.lines[j]) >= ind):
            s = self.lines[j].strip()
            j += 1
            if _SIMPLE_BORDER.fullmatch(s):
                if j >= len(self.lines) or not self.lines[j].strip():
                    break
                continue
            if not s or re.fullmatch(r"[- ]+", s):
                continue
            body = self.lines[j - 1][ind:]
            cells = [body[a:b] for a, b in zip(starts, starts[1:] + [len(body) + 1])]
            if cells[0].strip() or not rows:
                rows.append([[c] for c in cells])
            else:
                for parts, c in zip(rows[-1], cells):
                    parts.append(c)
        self.emit_table(rows)
        return j

    def emit_table(self, rows: list[list[list[str]]]) -> None:
        """One "table" block: a line per row, its non-empty cells joined by " | "."""
        texts = (" | ".join(t for t in (_cell_text(parts) for parts in row) if t) for row in rows)
        self.emit("table", "\n".join(t for t in texts if t))

    def special(self, i: int, line: str, s: str) -> int | None:
        """Explicit markup, doctest blocks and tables; None when ``line`` is ordinary text."""
        if _GRID_BORDER.fullmatch(s) or _SIMPLE_BORDER.fullmatch(s):
            self.flush()
            return self.grid_table(i) if s.startswith("+") else self.simple_table(i)
        if m := _DIRECTIVE.match(line):
            self.flush()
            return self.directive(i, m)
        if m := _FOOTNOTE.match(line):
            self.flush()
            self.add(m["text"], _indent(line) + 3)
            return i + 1
        if s == ".." or s.startswith(".. "):  # comment, hyperlink target, substitution definition
            self.flush()
            return _skip_body(self.lines, i + 1, _indent(line))
        if s.startswith(">>>"):
            self.flush()
            end = next((k for k in range(i, len(self.lines)) if not self.lines[k].strip()), len(self.lines))
            self.emit("code", textwrap.dedent("\n".join(self.lines[i:end])))
            return end
        return None

    def step(self, i: int) -> int:
        line = self.lines[i]
        s = line.strip()
        if not s:
            self.flush()
            return i + 1
        if (nxt := self.special(i, line, s)) is not None:
            return nxt
        if _RULE.fullmatch(s):  # section underline/overline, transition
            self.flush()
            return i + 1
        if not s.endswith("::"):
            self.add(s, _indent(line))
            return i + 1
        head = s[:-2]
        self.add(head.rstrip() if head.endswith(" ") or not head else head + ":", _indent(line))
        # the literal must be deeper than the text of the line that ends with "::" (a bullet's text, a definition)
        base = self.content_indent if len(self.para) == 1 else _indent(line)
        self.flush()
        return self.literal(i + 1, base)

    def read(self) -> list[tuple[str, str]]:
        i = 0
        while i < len(self.lines):
            i = self.step(i)
        self.flush()
        if self.prefix:
            self.emit("prose", "")
        return self.blocks


def clean_rst(text: str) -> str:
    """reST source -> plain text: prose paragraphs unwrapped and cleaned, code examples verbatim, table rows one per
    line."""
    out = []
    for kind, block in _RstReader(text).read():
        if kind != "code":
            lines = block.split("\n") if kind == "table" else [block]
            block = "\n".join(re.sub(r"[ \t]+", " ", clean_rst_inline(x)).strip() for x in lines)
        if block.strip():
            out.append(block.rstrip())
    return "\n\n".join(out)


_RST_SOURCES = r"usr/share/doc/python3\.\d+/html/_sources/(.+)\.txt"
MIN_DOC_CHARS = 200  # index pages are toctrees only: their text is a bare title


def read_python_docs() -> Iterator[Document]:
    """Python 3.11 documentation, one document per reST source file (``library/os.path``...)."""
    deb = find_archive("debian", "python3.11-doc_*.deb")
    for name, blob in deb_files(deb, _RST_SOURCES):
        doc_id = re.fullmatch(_RST_SOURCES, name).group(1).removesuffix(".rst")  # type: ignore[union-attr]
        if len(text := clean_rst(blob.decode("utf-8"))) >= MIN_DOC_CHARS:
            yield Document(doc_id, text)
