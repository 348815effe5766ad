"""The benchmarks' memory figure belongs to the measured process, not to the process that started it."""

import subprocess
import sys
import textwrap
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench"


def test_a_child_does_not_report_its_parents_peak():
    parent = textwrap.dedent(f"""
        import resource, subprocess, sys
        block = bytearray(1536 * 2**20)  # the parent touches 1.5 GiB first
        for i in range(0, len(block), 4096):
            block[i] = 1
        child = "import sys; sys.path.insert(0, {str(BENCH)!r}); import common, resource; " \\
                "print(common.peak_rss_gib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)"
        print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout)
    """)
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True).stdout.split()
    own, inherited = float(out[0]), float(out[1])
    assert inherited > 1.4  # what ru_maxrss reports: the parent's peak (the bug this guards against)
    assert own < 0.3  # the child's own peak: a bare interpreter
