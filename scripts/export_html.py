"""Export notebooks to offline HTML pages in build/html/ (./run_all.sh --html does it after a run).

    .venv/bin/python scripts/export_html.py              # every committed notebook, as it is now
    .venv/bin/python scripts/export_html.py 02 04        # some, by number or name
    .venv/bin/python scripts/export_html.py path/to/any.ipynb --out build/html/other

Each page embeds its figures (with alt text) and the feature views' JavaScript, loads nothing from the network, and
typesets formulas with a copy of Debian's MathJax (libjs-mathjax) in build/html/mathjax/, installed here when
missing (as root, quietly, by scripts/ensure_chromium.sh).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from saelib.core.html_export import MATHJAX, MathJaxMissingError, export_notebooks  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", help="numbers, names or .ipynb paths (default: every numbered notebook)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "html", help="folder for the pages (build/html)")
    args = ap.parse_args()
    committed = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    paths = []
    for name in args.notebooks or [p.stem for p in committed]:
        hits = (
            [Path(name)]
            if name.endswith(".ipynb")
            else [p for p in committed if p.stem == name or p.stem.startswith(f"{name}_")]
        )
        if not hits or not hits[0].exists():
            sys.exit(f"export_html: no notebook matches {name!r}")
        paths += hits
    if not (MATHJAX / "MathJax.js").exists():
        subprocess.run([str(ROOT / "scripts" / "ensure_chromium.sh")], check=False)
    try:
        pages = export_notebooks(paths, args.out)
    except MathJaxMissingError as err:
        sys.exit(f"export_html: {err}")
    for page in pages:
        print(f"export_html: {page}")


if __name__ == "__main__":
    main()
