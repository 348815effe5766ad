"""Model load time and memory: de-quantizing the GGUF file against reading the safetensors cache, side by side.

Each load runs in a fresh subprocess (nothing imported or cached in memory beforehand) with its own scratch
artifacts folder:
  1. gguf:   SAELIB_MODEL_CACHE=0, transformers de-quantizes the GGUF file (what every load cost before the cache);
  2. first:  cache on, empty: de-quantize once and write artifacts/models/<alias>-<sha>/;
  3. cached: cache on, filled: read the safetensors folder.
Prints seconds for ``load_model()`` (model + tokenizer + TransformerBridge), the process's peak memory (VmHWM), and
the ratio gguf/cached (the target: later loads in seconds, i.e. a ratio well above 1).

Usage: .venv/bin/python bench/bench_model_load.py [--model smollm2-135m-instruct] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, time
sys.path.insert(0, {bench!r})
t0 = time.perf_counter()
from saelib.model import load_model
load_model({model!r})
seconds = time.perf_counter() - t0
from common import peak_rss_gib
print(json.dumps({{"seconds": seconds, "peak_gib": peak_rss_gib()}}))
"""


def load_once(model: str, artifacts: Path, cache: bool) -> dict:
    env = os.environ | {
        "SAELIB_ARTIFACTS": str(artifacts),
        "SAELIB_MODEL_CACHE": "1" if cache else "0",
        "HF_HUB_OFFLINE": "1",
        "TQDM_DISABLE": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(bench=str(ROOT / "bench"), model=model)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--repeats", type=int, default=1, help="loads per path (the median is printed)")
    args = ap.parse_args()
    rows: dict[str, list[dict]] = {"gguf": [], "first": [], "cached": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            rows["gguf"].append(load_once(args.model, Path(tmp), cache=False))
            rows["first"].append(load_once(args.model, Path(tmp), cache=True))
            rows["cached"].append(load_once(args.model, Path(tmp), cache=True))
    med = {k: sorted(r["seconds"] for r in v)[len(v) // 2] for k, v in rows.items()}
    peak = {k: max(r["peak_gib"] for r in v) for k, v in rows.items()}
    print(f"model {args.model}, {args.repeats} load(s) per path, fresh process each")
    for k in rows:
        print(f"  {k:7s} load_model(): {med[k]:6.1f} s   peak memory (VmHWM) {peak[k]:.2f} GiB")
    print(f"  ratio gguf/cached: {med['gguf'] / med['cached']:.1f}x")


if __name__ == "__main__":
    main()
