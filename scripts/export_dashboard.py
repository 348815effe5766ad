"""Export a static HTML dashboard of a shipped dictionary (or any SAELens-format folder) for offline browsing.

    .venv/bin/python scripts/export_dashboard.py resid14-tied-r2-a2p15e-03            # -> build/dashboards/<name>/
    .venv/bin/python scripts/export_dashboard.py /path/to/saelens/folder --features 0-99
    open build/dashboards/resid14-tied-r2-a2p15e-03/index.html                       # no server needed

Statistics and examples come from the default profile's held-out store for the dictionary's hook (harvested on first
use, cached), massive-activation rows left out by training's rule. The dictionary is checked before the model loads:
a missing folder, or one saelib cannot run, stops the export with one line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_features(text: str | None) -> list[int] | None:
    """ "0-99,250" -> [0..99, 250]; None -> every feature."""
    if not text:
        return None
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def shipped_names() -> str:
    """The shipped dictionaries' names for --help (dictionaries/manifest.json), or why there are none."""
    from saelib.dictionaries.shipped import release_names

    try:
        return "shipped dictionaries:\n  " + "\n  ".join(release_names())
    except (OSError, ValueError, KeyError) as err:
        return f"no shipped dictionaries listed ({err})"


def load_dictionary(text: str):
    """(SAE, name) for a shipped dictionary's name or a SAELens folder, read and checked without the model; anything
    else raises ValueError with one line."""
    from saelib.dictionaries.sae.saelens_format import load_saelens
    from saelib.dictionaries.shipped import load_release, release_names

    path = Path(text)
    try:
        if path.is_dir():
            sae, name = load_saelens(path), path.name
        elif text in release_names():
            sae, name = load_release(text), text
        else:
            raise ValueError(f"{text!r} is neither a dictionary folder nor a shipped dictionary (--help lists them)")
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"{text}: {err}".replace("\n", " ")) from err
    if not sae.cfg.hook:
        raise ValueError(f"{text}: the dictionary names no hook (hook_name), so its activations cannot be read")
    return sae, name


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=shipped_names(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dictionary", help="a shipped dictionary's name (listed below) or a SAELens folder")
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder, replaced as a whole: new, empty or an earlier "
        "dashboard (default: build/dashboards/<name>)",
    )
    parser.add_argument("--features", help="features given a page, e.g. 0-99,250 (default: all)")
    parser.add_argument("--max-rows", type=int, default=65_536, help="held-out tokens read (whole contexts)")
    args = parser.parse_args()
    try:
        sae, name = load_dictionary(args.dictionary)
    except ValueError as err:
        sys.exit(f"export_dashboard: {err}")

    from saelib.activations.harvest import heldout_profile
    from saelib.core.paths import REPO_ROOT
    from saelib.core.profiles import get_profile
    from saelib.interp.dashboard import DashboardConfig, export_dashboard
    from saelib.model import load_model
    from saelib.model.lens import logit_lens
    from saelib.model.loader import model_name

    t0 = time.perf_counter()
    model = load_model()
    hook = sae.cfg.hook
    sae.check_compatible(model_name(model), hook, sae.cfg.d_in)
    store = heldout_profile(model, [hook], get_profile("default"), progress=False)
    out = args.out or REPO_ROOT / "build" / "dashboards" / name
    index = export_dashboard(
        sae,
        store,
        hook,
        model.tokenizer,
        out,
        f"{name} ({hook})",
        features=parse_features(args.features),
        lens=logit_lens(model, hook),
        cfg=DashboardConfig(max_rows=args.max_rows),
    )
    print(f"wrote {index} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
