"""The release manifest (``dictionaries/manifest.json``) as typed records.

``export_release`` writes the JSON; ``Manifest.from_json`` reads it back into records whose fields say what each
value is, checks the values that a string could get wrong (architecture, precision), and answers the queries the
notebooks ask: ``manifest.find(hook=..., architecture=..., l0=32)``. ``to_json`` gives back the JSON it was read
from, unchanged, so a record never loses a field the writer added.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from saelib.dictionaries.matched_l0 import l0_distance
from saelib.dictionaries.sae.base import ARCHITECTURES, Architecture

Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


class ManifestError(ValueError):
    """A manifest whose content does not fit its schema (names the field and the value)."""


@dataclass(frozen=True)
class MemberMetrics:
    """Held-out metrics of one member (``docs/metrics.md`` gives every formula)."""

    l0: float  # mean active latents per held-out token
    fvu: float  # pooled fraction of variance unexplained, massive-activation rows excluded
    ce_recovered: float  # CE loss recovered against zero ablation
    ce_recovered_mean: float | None  # against mean ablation (None where not measured)
    kl: float  # mean KL(clean || patched) per next-token prediction
    kl_recovered: float | None  # 1 - KL / KL under zero ablation (None in rows written before it was measured)
    dead_fraction: float  # latents that never fire over ``dead_tokens`` training tokens
    dense_fraction: float  # latents firing on more than 10% of those tokens
    dead_tokens: int
    eval_tokens: int

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> MemberMetrics:
        return cls(
            l0=float(row["l0"]),
            fvu=float(row["fvu"]),
            ce_recovered=float(row["ce_recovered"]),
            ce_recovered_mean=row.get("ce_recovered_mean"),
            kl=float(row["kl"]),
            kl_recovered=row.get("kl_recovered"),
            dead_fraction=float(row["dead_fraction"]),
            dense_fraction=float(row["dense_fraction"]),
            dead_tokens=int(row["dead_tokens"]),
            eval_tokens=int(row["eval_tokens"]),
        )


@dataclass(frozen=True)
class SweepMember:
    """One evaluated member of a release run, shipped or not (the manifest's ``sweep``)."""

    run: str  # the run's name, e.g. resid14-topk-r8
    hook: str
    architecture: Architecture
    ratio: float  # latents / d_in
    alpha: float  # the sparsity setting: L1 coefficient, k, or JumpReLU's target L0
    metrics: MemberMetrics
    json: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class ShippedDictionary:
    """A member whose weights ship in ``dictionaries/<name>/`` (SAELens's format)."""

    name: str
    run: str
    hook: str
    architecture: Architecture
    ratio: float
    alpha: float
    d_in: int
    d_sae: int
    sha256: dict[str, str]  # file name -> sha256, checked before every load
    metrics: MemberMetrics
    seed: int  # the training seed
    json: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class ReleaseData:
    """The stores the release trained and evaluated on (each entry's own store is in its JSON)."""

    train_tokens: int  # activations per hook in the training store
    heldout_tokens: int
    context_length: int
    train_precision: Precision  # matmul precision of the harvest and training (evaluation is float32)

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str) -> ReleaseData:
        precision = d.get("train_precision", "float32")
        if precision not in PRECISIONS:
            raise ManifestError(f"{source}: data.train_precision {precision!r} is not one of {PRECISIONS}")
        return cls(int(d["train_tokens"]), int(d["heldout_tokens"]), int(d["context_length"]), precision)


@dataclass(frozen=True)
class Manifest:
    """The whole release: its model, shipped dictionaries, every evaluated member, and the choice per hook."""

    model_name: str
    model_sha256: str
    dictionaries: tuple[ShippedDictionary, ...]
    sweep: tuple[SweepMember, ...]
    chosen: dict[str, str]  # hook -> name of the dictionary later notebooks use
    data: ReleaseData
    hygiene_rule: str  # which rows training and FVU leave out
    hygiene: tuple[dict[str, Any], ...]  # per hook and training store: norms, share of the squared norm in the top
    # rows, outlier rows
    mmcs: tuple[dict[str, Any], ...]  # MMCS between a layer's R = 2 and R = 4 members, with a random control
    json: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "manifest.json") -> Manifest:
        try:
            entries = tuple(_shipped(e, source) for e in data["dictionaries"])
            sweep = tuple(_sweep_member(r, source) for r in data["sweep"])
            return cls(
                data["model"]["name"],
                data["model"]["weights_sha256"],
                entries,
                sweep,
                dict(data["chosen"]),
                ReleaseData.from_json(data["data"], source),
                data["hygiene"]["rule"],
                tuple({"store": data["data"].get("train_store"), **h} for h in data["hygiene"]["per_hook"]),
                tuple(data.get("mmcs", [])),
                data,
            )
        except KeyError as err:
            raise ManifestError(
                f"{source}: missing field {err}; regenerate it with scripts/release_dictionaries.py"
            ) from None

    @classmethod
    def load(cls, root: Path) -> Manifest:
        from saelib.core.artifacts import read_json

        path = Path(root) / "manifest.json"
        return cls.from_json(read_json(path), str(path))

    def to_json(self) -> dict[str, Any]:
        return self.json

    def entry(self, name: str) -> ShippedDictionary:
        for e in self.dictionaries:
            if e.name == name:
                return e
        raise KeyError(f"no shipped dictionary {name!r}; names: {', '.join(e.name for e in self.dictionaries)}")

    def find(
        self,
        hook: str | None = None,
        architecture: str | None = None,
        run: str | None = None,
        ratio: float | None = None,
        seed: int | None = None,
        l0: float | None = None,
        tolerance: float = 0.10,
    ) -> list[ShippedDictionary]:
        """Shipped dictionaries matching every given field; with ``l0``, only those whose held-out L0 is within
        ``tolerance`` of it, nearest first."""
        out = [
            e
            for e in self.dictionaries
            if (hook is None or e.hook == hook)
            and (architecture is None or e.architecture == architecture)
            and (run is None or e.run == run)
            and (ratio is None or e.ratio == ratio)
            and (seed is None or e.seed == seed)
        ]
        if l0 is not None:
            out = sorted(
                (e for e in out if abs(e.metrics.l0 - l0) <= tolerance * l0),
                key=lambda e: l0_distance(e.metrics.l0, l0),
            )
        return out

    def without_runs(self, runs: set[str]) -> Manifest:
        """The same release without the members of ``runs`` (shipped and swept); ``chosen`` keeps only names left."""
        entries = tuple(e for e in self.dictionaries if e.run not in runs)
        names = {e.name for e in entries}
        first = self.json["data"].get("train_store")  # rows written without one are from the first export's store
        stores = {r.json.get("train_store", first) for r in self.sweep if r.run not in runs}
        return replace(
            self,
            hygiene=tuple(h for h in self.hygiene if h["store"] in stores),
            dictionaries=entries,
            sweep=tuple(r for r in self.sweep if r.run not in runs),
            chosen={h: n for h, n in self.chosen.items() if n in names},
            json={
                **self.json,
                "dictionaries": [e.json for e in entries],
                "sweep": [r.json for r in self.sweep if r.run not in runs],
            },
        )

    def sweep_of(self, run: str) -> list[SweepMember]:
        """Every evaluated member of ``run``, by increasing sparsity setting."""
        return sorted((r for r in self.sweep if r.run == run), key=lambda r: r.alpha)


def _architecture(value: Any, source: str, where: str) -> Architecture:
    if value not in ARCHITECTURES:
        raise ManifestError(f"{source}: {where} has architecture {value!r}, not one of {ARCHITECTURES}")
    return value


def _shipped(e: dict[str, Any], source: str) -> ShippedDictionary:
    return ShippedDictionary(
        name=e["name"],
        run=e["run"],
        hook=e["hook"],
        architecture=_architecture(e["architecture"], source, f"dictionary {e['name']!r}"),
        ratio=float(e["ratio"]),
        alpha=float(e["alpha"]),
        d_in=int(e["d_in"]),
        d_sae=int(e["d_sae"]),
        sha256=dict(e["sha256"]) if isinstance(e.get("sha256"), dict) else {},  # load_release refuses it
        metrics=MemberMetrics.from_json(e["metrics"]),
        seed=int(e.get("train_config", {}).get("seed", 0)),
        json=e,
    )


def _sweep_member(r: dict[str, Any], source: str) -> SweepMember:
    return SweepMember(
        run=r["run"],
        hook=r["hook"],
        architecture=_architecture(r["architecture"], source, f"sweep row of {r['run']!r}"),
        ratio=float(r["ratio"]),
        alpha=float(r["alpha"]),
        metrics=MemberMetrics.from_json(r),
        json=r,
    )
