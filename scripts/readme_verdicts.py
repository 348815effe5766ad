"""README's verdict table, generated from the verdict tables the executed notebooks show.

    .venv/bin/python scripts/readme_verdicts.py            # print the table the notebooks give
    .venv/bin/python scripts/readme_verdicts.py --check    # exit 1 with a diff when README's table differs
    .venv/bin/python scripts/readme_verdicts.py --write    # replace README's table with it

The table sits in README.md between the lines <!-- verdicts:begin --> and <!-- verdicts:end -->; --write changes
nothing outside them. A default-profile ./run_all.sh writes it after the notebooks it commits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from saelib.core.readme_verdicts import (  # noqa: E402
    MarkersError,
    MissingVerdictsError,
    block_diff,
    collect,
    markdown_table,
    update_readme,
)


def main(argv: list[str] | None = None) -> int:
    """Print, check or write the table; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff when README's table differs")
    mode.add_argument("--write", action="store_true", help="replace the table between README's markers")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md", help="the README to check or write")
    ap.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="folder of the executed notebooks")
    args = ap.parse_args(argv)
    try:
        table = markdown_table(collect(args.notebooks))
        if not (args.check or args.write):
            print(table)
            return 0
        readme = args.readme.read_text(encoding="utf-8")
        diff = block_diff(readme, table)
    except (MarkersError, MissingVerdictsError) as err:
        print(f"readme_verdicts: {err}", file=sys.stderr)
        return 2
    if args.check:
        if diff:
            print(
                f"readme_verdicts: {args.readme.name}'s verdict table differs from the notebooks' "
                f"(scripts/readme_verdicts.py --write updates it)\n{diff}",
                file=sys.stderr,
            )
        return 1 if diff else 0
    changed = bool(diff) and update_readme(args.readme, args.notebooks)
    print(f"readme_verdicts: {args.readme.name} {'updated' if changed else 'already agrees'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
