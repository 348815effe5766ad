"""The dictionary chosen per layer: notebook 01 picks one SAE per hook and records it here; later notebooks load it.

Rule (stated in notebook 01; ``choose``): at the dictionary ratio of the layer sweep, the sparsest dictionary (largest
alpha) whose CE loss recovered is at least ``min_ce_recovered``; if none reaches it, the one that recovers the most.
The release (``saelib.dictionaries.release``) applies the same rule to each run's sparse members.
Records live in ``artifacts/dictionaries/<profile>.json`` (hook -> folder, ratio, alpha, member, metrics).
"""

from __future__ import annotations

from pathlib import Path

from saelib.core.artifacts import atomic_write_json, file_sha256, read_json
from saelib.core.paths import artifacts_dir
from saelib.dictionaries.manifest import Manifest
from saelib.dictionaries.sae import SAE, load_sae


def choose(rows: list[dict], ratio: float | None = None, min_ce_recovered: float = 0.8) -> dict:
    """Pick one row (a dict with alpha, ce_recovered, ...) by the rule above: among the rows at ``ratio`` (every row
    when None), the largest alpha with ``ce_recovered >= min_ce_recovered``, else the largest ``ce_recovered``."""
    candidates = rows if ratio is None else [r for r in rows if r["ratio"] == ratio]
    if not candidates:
        raise ValueError(f"no dictionary with ratio {ratio}; ratios present: {sorted({r['ratio'] for r in rows})}")
    good = [r for r in candidates if r["ce_recovered"] >= min_ce_recovered]
    return max(good, key=lambda r: r["alpha"]) if good else max(candidates, key=lambda r: r["ce_recovered"])


def _registry(profile: str) -> Path:
    return artifacts_dir() / "dictionaries" / f"{profile}.json"


def record(profile: str, hook: str, directory: Path, row: dict) -> None:
    """Record ``row``'s dictionary (in the ensemble saved at ``directory``) as the choice for ``hook``."""
    path = _registry(profile)
    registry = read_json(path) if path.exists() else {}
    registry[hook] = {"directory": str(Path(directory).relative_to(artifacts_dir())), **row}
    atomic_write_json(path, registry)


def chosen(profile: str) -> dict[str, dict]:
    path = _registry(profile)
    if not path.exists():
        raise FileNotFoundError(
            f"No dictionaries recorded for profile {profile!r}: run notebook 01 first "
            f"(./run_all.sh 01{'' if profile == 'default' else ' --profile ' + profile})"
        )
    return read_json(path)


def load_chosen(profile: str, hook: str, model_name: str | None = None) -> SAE:
    """The single-member SAE chosen for ``hook``; validated against the model when ``model_name`` is given."""
    registry = chosen(profile)
    if hook not in registry:
        raise KeyError(f"no dictionary chosen for {hook!r} in profile {profile!r}; have {sorted(registry)}")
    info = registry[hook]
    ensemble = load_sae(artifacts_dir() / info["directory"], model_name=model_name, hook=hook)
    return ensemble.member(list(ensemble.cfg.alphas).index(info["alpha"]))


# --- the release dictionaries shipped in dictionaries/ (SAELens format, see saelib.dictionaries.release) ---------------------


class DictionaryIntegrityError(ValueError):
    """A shipped dictionary file is missing or differs from the manifest."""


def plain_name(name: object, what: str = "dictionary name") -> str:
    """``name`` if it names a folder or file directly inside another: a non-empty string without ``/``, ``\\``, a
    leading dot (``.``, ``..``, hidden files) or NUL; otherwise a :class:`DictionaryIntegrityError`."""
    if not isinstance(name, str) or not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise DictionaryIntegrityError(
            f"{what} {name!r} is not a plain folder or file name (no '/', '\\', leading "
            "'.' or empty name): a release manifest only names what lies directly in "
            "dictionaries/. Restore the manifest with `git checkout -- dictionaries/` "
            "or regenerate it with scripts/release_dictionaries.py"
        )
    return name


def release_manifest(root: Path | None = None) -> dict:
    """``dictionaries/manifest.json``: every shipped dictionary with its files' sha256, config and metrics."""
    from saelib.dictionaries.release import DICTIONARIES_DIR

    path = Path(root or DICTIONARIES_DIR) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: restore it with `git checkout -- dictionaries/` or regenerate "
            "the release with `.venv/bin/python scripts/release_dictionaries.py`"
        )
    return read_json(path)


def load_manifest(root: Path | None = None) -> Manifest:
    """``dictionaries/manifest.json`` as typed records (``saelib.dictionaries.manifest``); ``release_manifest`` gives
    the JSON itself."""
    from saelib.dictionaries.release import DICTIONARIES_DIR

    root = Path(root or DICTIONARIES_DIR)
    return Manifest.from_json(release_manifest(root), str(root / "manifest.json"))


def release_names(root: Path | None = None) -> list[str]:
    """The names of the shipped dictionaries, in the manifest's order."""
    return [d.name for d in load_manifest(root).dictionaries]


def load_release(name: str, model_name: str | None = None, hook: str | None = None, root: Path | None = None) -> SAE:
    """A shipped dictionary by name, its files checked against the manifest's sha256 first; with ``model_name``
    or ``hook`` given, a dictionary for another model or hook is an error."""
    from saelib.dictionaries.release import DICTIONARIES_DIR
    from saelib.dictionaries.sae.saelens_format import CONFIG, WEIGHTS, load_saelens

    root = Path(root or DICTIONARIES_DIR)
    entries = {d["name"]: d for d in release_manifest(root)["dictionaries"]}  # integrity first, schema later
    if name not in entries:
        raise KeyError(f"no shipped dictionary {name!r}; available: {', '.join(sorted(map(str, entries)))}")
    folder = root / plain_name(name)
    hashes = entries[name].get("sha256")
    hashes = hashes if isinstance(hashes, dict) else {}
    missing = sorted({CONFIG, WEIGHTS} - set(hashes))
    if missing:
        raise DictionaryIntegrityError(
            f"{root / 'manifest.json'} lists no sha256 for {', '.join(missing)} of {name}: "
            "every file of a shipped dictionary is checked before it loads. Restore the "
            "manifest with `git checkout -- dictionaries/` or regenerate the release with "
            "scripts/release_dictionaries.py"
        )
    for file, expected in hashes.items():
        path = folder / plain_name(file, f"file name of {name}")
        if not path.is_file():
            raise DictionaryIntegrityError(
                f"{path} is missing; restore it with `git checkout -- "
                f"{path.relative_to(root.parent)}` or regenerate with "
                "scripts/release_dictionaries.py"
            )
        actual = file_sha256(path)
        if actual != expected:
            raise DictionaryIntegrityError(
                f"{path} has sha256 {actual[:16]}..., the manifest says {str(expected)[:16]}...: the file was altered "
                f"or is from another release. Restore it with `git checkout -- {path.relative_to(root.parent)}` or "
                "regenerate the release with scripts/release_dictionaries.py"
            )
    sae = load_saelens(folder, model_name=model_name, hook=hook)
    sae.cfg.extra.update(release=entries[name])
    return sae


def release_sweep(
    hook: str,
    ratio: float = 2.0,
    model_name: str | None = None,
    architecture: str = "tied",
    root: Path | None = None,
    seed: int = 0,
) -> dict[float, SAE]:
    """alpha -> every shipped dictionary of ``hook`` at ``ratio`` trained with ``seed`` (e.g. the R = 2 sweep of a
    residual layer), each checked against the manifest; a clear error when the release has none for that hook and
    ratio."""
    manifest = load_manifest(root)
    entries = manifest.find(hook=hook, ratio=ratio, architecture=architecture, seed=seed)
    if not entries:
        have = sorted({(d.hook, d.ratio) for d in manifest.dictionaries})
        raise KeyError(
            f"the release ships no {architecture} dictionary for {hook} at ratio {ratio:g}; it has "
            f"{have}. Train your own (DICTIONARIES='profile' in the notebooks) or run "
            "scripts/release_dictionaries.py"
        )
    return {
        d.alpha: load_release(d.name, model_name=model_name, hook=hook, root=root)
        for d in sorted(entries, key=lambda d: d.alpha)
    }
