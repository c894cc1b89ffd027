"""The study spec's sections that are hashed or published as written: typed and read-only.

``evaluation:``, ``leaderboard:`` and ``resources:`` each become a frozen value when the
spec loads (:mod:`gmgbench.harness.spec` checks them first). Each keeps the block exactly as the
user wrote it, key absence included, because that is what the run id and the spec hash
are computed from: ``to_dict()`` gives it back, so typing a section changes no id.

This module imports nothing of the project, so the spec, the leaderboard options and
the dlib importer can all depend on it without a circle.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# No import of gmgbench.harness.leaderboard.options, not even for type checkers: it imports this
# module (FrozenMap, Reference values), and the architecture test counts every import.

__all__ = ["FrozenMap", "frozen_map", "thaw", "EvaluationSpec", "LeaderboardSpec", "DEFAULT_SELECTION"]

DEFAULT_SELECTION = "dci.disentanglement"


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return frozen_map(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def frozen_map(value: Any) -> "FrozenMap":
    """``value`` as a FrozenMap; one already frozen is returned as it is, not copied again."""
    return value if isinstance(value, FrozenMap) else FrozenMap(value)


def thaw(value: Any) -> Any:
    """Plain, mutable, JSON-ready data again: mappings as dicts, sequences as lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


class FrozenMap(Mapping):
    """A read-only mapping; nested mappings and lists are frozen too (lists as tuples).

    Unlike :class:`types.MappingProxyType` it pickles (submitit ships a run's resources)
    and is hashable. It equals the dict it was made from; :meth:`to_dict` gives that dict
    back, so the hashes computed from it do not change.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None):
        if data is not None and not isinstance(data, Mapping):
            raise TypeError(f"expected a mapping, got {type(data).__name__}")
        object.__setattr__(self, "_data", {k: _freeze(v) for k, v in (data or {}).items()})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        # As data: equal to the dict it was made from (whose lists it holds as tuples).
        return thaw(self) == thaw(other) if isinstance(other, Mapping) else NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    __delattr__ = __setattr__

    def __reduce__(self):
        return FrozenMap, (self.to_dict(),)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"

    def to_dict(self) -> dict[str, Any]:
        return thaw(self)


@dataclass(frozen=True)
class EvaluationSpec:
    """The ``evaluation:`` block: the metrics every run computes and the evaluation seed.

    Built from the block as written (``raw``); ``metrics`` (name → read-only settings,
    empty where the spec wrote none) and ``seed`` (0 unless given) are its typed view.
    """

    raw: FrozenMap = field(default_factory=FrozenMap)
    metrics: FrozenMap = field(init=False, compare=False, repr=False)
    seed: int = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        raw = frozen_map(self.raw)
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "metrics", FrozenMap({k: v or {} for k, v in (raw.get("metrics") or {}).items()}))
        object.__setattr__(self, "seed", raw.get("seed", 0))

    def for_runs(self) -> "EvaluationSpec":
        """The block each run records and hashes: both keys present, the settings as written."""
        return EvaluationSpec({"metrics": self.raw.get("metrics") or {}, "seed": self.seed})

    def settings(self) -> dict[str, dict[str, Any]]:
        """``{metric: keyword arguments}`` as fresh dicts, for :func:`metrics.evaluate`."""
        return {name: thaw(kwargs) for name, kwargs in self.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        return self.raw.to_dict()


@dataclass(frozen=True)
class LeaderboardSpec:
    """The ``leaderboard:`` block: as written (``raw``, hashed and published) and typed.

    ``options`` are the block's :class:`~gmgbench.harness.leaderboard.options.Options` (selection
    protocol, claims, ...), checked against the study when the spec loads. They are None
    for a spec read back from data (a release's manifest: its own recorded options decide
    how it rebuilds) or built by hand; :meth:`Options.from_spec` checks those on use.
    """

    raw: FrozenMap = field(default_factory=FrozenMap)
    options: "Options | None" = field(default=None, compare=False)
    # {(dataset, method label): Reference} from the methods' ``reference:`` entries, checked
    # at load like the options (None where those are).
    references: "FrozenMap | None" = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "raw", frozen_map(self.raw))

    @property
    def selection_metric(self) -> str:
        """The ``<metric>.<key>`` column that selects each method's setting."""
        sel = self.raw.get("selection", DEFAULT_SELECTION)
        return sel["metric"] if isinstance(sel, Mapping) else sel

    def to_dict(self) -> dict[str, Any]:
        return self.raw.to_dict()
