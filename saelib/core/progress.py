"""Progress bars that a caller can switch off and that honour ``TQDM_DISABLE=1`` (set by run_all.sh and the
tests, so committed notebooks carry no progress-bar output)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress(iterable: Iterable[Any] | None = None, enabled: bool = True, **kwargs: Any) -> tqdm:
    off = not enabled or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    return tqdm(iterable, disable=off, **kwargs)
