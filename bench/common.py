"""Shared by the benchmarks: a throwaway artifacts folder that reuses the real (cached) corpus, and the peak
memory of the current process."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def scratch_artifacts() -> Iterator[Path]:
    """SAELIB_ARTIFACTS -> a temporary folder whose corpus/ and sources/ link to the real ones."""
    from saelib.core.paths import artifacts_dir

    real, old = artifacts_dir(), os.environ.get("SAELIB_ARTIFACTS")
    with tempfile.TemporaryDirectory() as tmp:
        for shared in ("corpus", "sources"):
            (real / shared).mkdir(parents=True, exist_ok=True)
            (Path(tmp) / shared).symlink_to(real / shared, target_is_directory=True)
        os.environ["SAELIB_ARTIFACTS"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("SAELIB_ARTIFACTS", None)
            else:
                os.environ["SAELIB_ARTIFACTS"] = old


def peak_rss_gib() -> float:
    """This process's own peak resident memory (``VmHWM`` of /proc/self/status), in GiB.

    Not ``resource.getrusage(...).ru_maxrss``: on Linux a child started from Python inherits its parent's maximum
    there (it survives fork and exec), so a benchmark child would report the parent's peak. ``VmHWM`` belongs to
    the address space, which exec replaces, so it counts only what this program itself touched."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB -> GiB
    raise RuntimeError("/proc/self/status has no VmHWM line (not Linux?)")
