"""Run notebooks on the simulated accelerator, to find device bugs in their code without a GPU.

    .venv/bin/python tests/notebooks_on_simulated_device.py 02 05        # the dev profile
    .venv/bin/python tests/notebooks_on_simulated_device.py --profile default 00

Each notebook's py:percent script runs in this process with the profile's device set to ``simgpu``
(``tests/simulated_device.py``) and every tensor op inside the simulator's dispatch mode: an op mixing a tensor on
the device with a CPU tensor, or ``.numpy()`` of a device tensor, raises where a GPU would, with the notebook's line
in the traceback. Every op is dispatched through Python, so it is slower than the CPU: use the dev profile. Figures
go to ``figures/<profile>/`` as in ``./run_all.sh --profile``; no notebook is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")  # before any notebook imports pyplot

from simulated_device import NAME, simulated_device  # noqa: E402  (tests/ is this script's folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from run_notebooks import select  # noqa: E402  ./run_all.sh's choice of notebooks; also sets HF_HUB_OFFLINE, TQDM_DISABLE

from saelib.core import profiles  # noqa: E402


def on_simulated_device(get_profile):
    """``get_profile`` with the device of every profile replaced by the simulator's."""

    def wrapped(name: str) -> profiles.Profile:
        return dataclasses.replace(get_profile(name), device=NAME)

    return wrapped


def module_devices(namespace: dict) -> set[str]:
    """Where the modules the notebook left in its namespace (the model among them) hold their parameters."""
    firsts = (next(m.parameters(), None) for m in namespace.values() if isinstance(m, torch.nn.Module))
    return {str(p.device) for p in firsts if p is not None}


def run(script: Path, profile: str) -> tuple[float, set[str]]:
    source, n = re.subn(r'^PROFILE: str = "\w+"', f'PROFILE: str = "{profile}"', script.read_text(), flags=re.M)
    if n != 1:
        raise ValueError(f"{script.name}: no 'PROFILE: str = ...' parameter line to set")
    namespace = {"__name__": "__main__", "display": lambda *a, **k: None}
    start = time.time()
    with simulated_device():
        exec(compile(source, str(script), "exec"), namespace)  # noqa: S102  (a notebook of this repository)
    return time.time() - start, module_devices(namespace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="numbers or names (default: all)")
    parser.add_argument("--profile", default="dev")
    args = parser.parse_args()
    profiles.get_profile = on_simulated_device(profiles.get_profile)  # the notebooks call it after importing
    for script in (nb.with_suffix(".py") for nb in select(args.notebooks)):
        print(f"=== {script.stem} on {NAME} (profile {args.profile})", flush=True)
        seconds, devices = run(script, args.profile)
        print(f"=== {script.stem}: ran to the end in {seconds:.0f} s; modules left on {sorted(devices)}", flush=True)


if __name__ == "__main__":
    main()
