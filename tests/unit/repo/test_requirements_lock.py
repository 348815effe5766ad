"""requirements.lock (what scripts/bootstrap.sh installs) pins every package requirements.txt names, each at a version
its specifier allows; the data packages of requirements-data.txt and saelib itself stay out of it."""

from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from saelib.core.paths import REPO_ROOT


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def _lock() -> dict[str, Version]:
    pins = {}
    for req in _requirements(REPO_ROOT / "requirements.lock"):
        (spec,) = req.specifier  # one exact pin per line
        assert spec.operator == "==", f"requirements.lock pins exactly: {req}"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{req.name} appears twice in requirements.lock"
        pins[name] = Version(spec.version)
    return pins


def test_the_lock_satisfies_every_requirement():
    pins = _lock()
    missing = [str(r) for r in _requirements(REPO_ROOT / "requirements.txt") if canonicalize_name(r.name) not in pins]
    assert not missing, f"requirements.lock lacks {missing}: regenerate it with scripts/lock_requirements.sh"
    for req in _requirements(REPO_ROOT / "requirements.txt"):
        version = pins[canonicalize_name(req.name)]
        assert req.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {req.name}=={version}, outside requirements.txt's {req}"
        )


def test_the_lock_leaves_out_the_data_packages_and_saelib():
    pins = _lock()
    data = {canonicalize_name(r.name) for r in _requirements(REPO_ROOT / "requirements-data.txt")}
    assert not (data | {"saelib"}) & set(pins)
    assert str(pins["torch"]) == "2.13.0"
