"""The leaderboard's settings: the study spec's ``leaderboard:`` block, checked at spec load.

This module imports nothing heavy (no pandas, no other leaderboard module), so the spec
loader can check a study's leaderboard before anything trains, and ``aggregate``,
``claims`` and ``render`` all depend on it instead of on each other.

Two choices here decide what a board may claim, and every board states both:

- **Selection protocol** (``selection``). A string ``<metric>.<key>`` selects each method's
  setting by its mean over all seeds, and the same seeds then give the shown values and
  the claims ("selected and judged on the same seeds"; optimistic for methods with a
  grid). ``{metric: <metric>.<key>, seeds: [0, 1]}`` selects on those seeds only and
  judges on the others ("selected on held-out seeds").
- **Claims test** (``claims_test``). ``paired`` (default): runs with the same seed share
  initialisation and data order (``harness/train.py`` seeds the model, the data sampler
  and the noise from the run's seed alone), so a claim is judged on the per-seed
  differences. ``welch``: the two sides as independent samples, for unpaired designs.
  ``claims_correction: holm`` (default) corrects for the number of comparisons.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from gmgbench.harness.errors import UserError, check_keys, did_you_mean
from gmgbench.harness.sections import DEFAULT_SELECTION, FrozenMap, LeaderboardSpec
from gmgbench.metrics import table as metric_table

__all__ = ["LeaderboardError", "Options", "Claim", "parse_claims", "references", "DEFAULT_LOWER",
           "Reference", "CLAIMS_TESTS", "CLAIMS_CORRECTIONS", "MIN_PAIRS", "MIN_RANK_SEEDS", "OPTION_KEYS",
           "check_section"]


class LeaderboardError(UserError, ValueError):
    """Bad leaderboard input (spec key, release folder, file); the message names it."""


# Which direction is better is the metric's declaration (metrics/table.py). ``lower_is_better``
# adds columns to it; its default, recorded in every release's options since v1, is the
# unsupervised metric's lower keys (the one metric whose keys were lower-first then).
DEFAULT_LOWER = tuple(f"unsupervised.{k}" for k in metric_table.declaration("unsupervised").lower)

CLAIMS_TESTS = ("paired", "welch")
CLAIMS_CORRECTIONS = ("holm", "none")
# Fewer seeds (or pairs) than this never give a verdict: with 2 the t-quantile is 12.7 and
# with 1 there is no spread at all.
MIN_PAIRS = 3
# A bootstrap rank interval from fewer seeds resamples so few distinct means that it prints
# certainty it does not have (2 seeds: 3 distinct means per side, "[1.00, 1.00]" is common).
MIN_RANK_SEEDS = 3

OPTION_KEYS = {
    "selection": "<metric>.<key> (select on all seeds, judge on the same ones) or "
                 "{metric: <metric>.<key>, seeds: [..]} (select on those seeds, judge on the others)",
    "all_settings": "true: one row per hyperparameter setting, no selection",
    "metrics": "list of <metric>.<key> columns to show (default: every one in the results)",
    "lower_is_better": "list of <metric>.<key> columns where lower is better (besides those the metric declares)",
    "digits": "decimals shown in cells",
    "bootstrap": "bootstrap resamples of the seeds for rank intervals",
    "bootstrap_seed": "seed of the bootstrap",
    "figures": "false: publish without figures",
    "claims": "list of {claim: text, better: method label, than: method label} judged per dataset",
    "claims_test": "paired (per-seed differences; default) or welch (unpaired designs)",
    "claims_correction": "holm (default: across every comparison of the board) or none",
    "min_seeds": "entries with fewer judged seeds are shown with the reason but not ranked (default 3)",
}
_SELECTION_KEYS = ("metric", "seeds")


@dataclass(frozen=True)
class Claim:
    claim: str
    better: str
    than: str


@dataclass(frozen=True)
class Options:
    """Leaderboard settings: the study spec's ``leaderboard:`` block plus command-line flags.

    ``selection_seeds`` is None for "selected and judged on the same seeds", else the seeds
    the setting is selected on (the others are judged). ``text_version`` is the wording of
    the board: 1 for releases published before the board stated its claims method and
    selection protocol (they rebuild with their original words), 2 for those before the
    ranking rules, claim power and selection stability (rebuilt as published), 3 for those
    before the board named GMG's training estimator (cpu-repro v3, gmg-mechanism v4), 4 since.
    ``min_seeds``: an entry with fewer judged seeds with a value is shown, not ranked (text 3).
    """

    selection: str = DEFAULT_SELECTION
    selection_seeds: tuple[int, ...] | None = None
    all_settings: bool = False
    metrics: tuple[str, ...] | None = None
    lower_is_better: tuple[str, ...] = DEFAULT_LOWER
    digits: int = 3
    bootstrap: int = 1000
    bootstrap_seed: int = 0
    figures: bool = True
    claims: tuple[Claim, ...] = ()
    claims_test: str = "paired"
    claims_correction: str = "holm"
    text_version: int = 4
    min_seeds: int = 3
    # True: a cell may average runs of different method code (marked "mixed code"); see docs/store.md.
    allow_stale: bool = False

    def __post_init__(self):
        if not 0 <= self.digits <= 10:
            raise LeaderboardError(f"leaderboard.digits: expected 0..10, got {self.digits}")
        if self.bootstrap < 1:
            raise LeaderboardError(f"leaderboard.bootstrap: expected ≥ 1 resamples, got {self.bootstrap}")
        if self.min_seeds < 1:
            raise LeaderboardError(f"leaderboard.min_seeds: expected ≥ 1 seed, got {self.min_seeds}")
        if self.claims_test not in CLAIMS_TESTS:
            raise LeaderboardError(f"leaderboard.claims_test: expected one of {', '.join(CLAIMS_TESTS)}, "
                                   f"got {self.claims_test!r}")
        if self.claims_correction not in CLAIMS_CORRECTIONS:
            raise LeaderboardError(f"leaderboard.claims_correction: expected one of {', '.join(CLAIMS_CORRECTIONS)}, "
                                   f"got {self.claims_correction!r}")

    @property
    def held_out(self) -> bool:
        """True when the setting is selected on other seeds than the ones judged."""
        return self.selection_seeds is not None and not self.all_settings

    def judged_seeds(self, seeds) -> tuple[int, ...]:
        """The study's seeds that give the shown values, ranks and claims."""
        if not self.held_out:
            return tuple(seeds)
        return tuple(s for s in seeds if s not in self.selection_seeds)

    def selecting_seeds(self, seeds) -> tuple[int, ...]:
        """The study's seeds whose mean selects each method's setting."""
        return tuple(seeds) if not self.held_out else tuple(s for s in seeds if s in self.selection_seeds)

    @classmethod
    def from_spec(cls, spec, all_settings: bool | None = None, allow_stale: bool = False) -> "Options":
        """The spec's ``leaderboard:`` block (``spec.leaderboard``, a
        :class:`~gmgbench.harness.sections.LeaderboardSpec`) as Options, plus the command line's
        flags. A loaded spec carries them, checked at load; any other (built by hand) is
        checked here against the study (its seeds, metrics, method labels); every error
        names the file and the key."""
        opts = spec.leaderboard.options
        if opts is None:
            opts = cls._check(spec)
        flags = {k: True for k, on in (("all_settings", all_settings), ("allow_stale", allow_stale)) if on}
        return replace(opts, **flags) if flags else opts

    @classmethod
    def _check(cls, spec, columns: list[str] | None = None) -> "Options":
        """``columns``: every ``<metric>.<key>`` the study computes, where known (the spec's
        full check); the selection must be one of them."""
        file = str(spec.path or "<study spec>")
        where = f"{file}: leaderboard"
        raw = spec.leaderboard.to_dict()  # as written (lists are lists again); a mapping, or it would not load
        check_keys(f"{where}.", raw, OPTION_KEYS, error=LeaderboardError)
        kw: dict[str, Any] = {}
        for key in ("metrics", "lower_is_better"):
            if key in raw:
                val = raw[key]
                if not isinstance(val, (list, tuple)) or not all(isinstance(v, str) for v in val):
                    raise LeaderboardError(f"{where}.{key}: expected a list of '<metric>.<key>' names, got {val!r}")
                kw[key] = tuple(val)
        for key, typ in (("all_settings", bool), ("digits", int), ("bootstrap", int), ("bootstrap_seed", int),
                         ("figures", bool), ("claims_test", str), ("claims_correction", str),
                         ("min_seeds", int)):
            if key in raw:
                if not isinstance(raw[key], typ) or (typ is int and isinstance(raw[key], bool)):
                    raise LeaderboardError(f"{where}.{key}: expected {typ.__name__}, got {raw[key]!r}")
                kw[key] = raw[key]
        if "selection" in raw:
            kw["selection"], kw["selection_seeds"] = _parse_selection(raw["selection"], f"{where}.selection",
                                                                      tuple(spec.seeds))
        if "claims" in raw:
            kw["claims"] = parse_claims(raw["claims"], where, [m.label for m in spec.methods])
        if "." not in kw.get("selection", DEFAULT_SELECTION):
            raise LeaderboardError(f"{where}.selection: expected '<metric>.<key>' (e.g. dci.disentanglement), "
                                   f"got {kw['selection']!r}")
        try:
            opts = cls(**kw)
        except LeaderboardError as err:
            raise LeaderboardError(f"{file}: {err}") from None
        _check_selection(spec, opts.selection, raw, where, columns)
        if opts.claims_test == "paired":
            _check_pairing(spec, opts.claims, where)
        return opts

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["metrics"] = list(self.metrics) if self.metrics is not None else None
        d["lower_is_better"] = list(self.lower_is_better)
        d["selection_seeds"] = list(self.selection_seeds) if self.selection_seeds is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Options":
        """The inverse of :meth:`to_dict`. A release's options written before a key existed
        get that key's old meaning: Welch's interval, no correction, selection on the seeds
        judged, and the wording of then (``text_version`` 1), so it rebuilds byte for byte."""
        d = dict(d)
        d["metrics"] = tuple(d["metrics"]) if d.get("metrics") is not None else None
        d["lower_is_better"] = tuple(d.get("lower_is_better", DEFAULT_LOWER))
        d["claims"] = tuple(Claim(**c) for c in d.get("claims", ()))
        seeds = d.get("selection_seeds")
        d["selection_seeds"] = tuple(seeds) if seeds is not None else None
        d.setdefault("claims_test", "welch")
        d.setdefault("claims_correction", "none")
        d.setdefault("text_version", 1)
        return cls(**d)

    def direction(self, column: str) -> int:
        """+1 higher is better, −1 lower is better, 0 not a score: the metric's declaration
        (metrics/table.py), with ``lower_is_better``'s columns lower-first; a column no
        registered metric declares is higher-first unless listed."""
        declared = metric_table.direction(column)
        if declared == 0:
            return 0
        return -1 if column in self.lower_is_better else (declared or 1)


def _seeds(seeds) -> str:
    return ", ".join(str(s) for s in seeds) or "none"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_selection(raw: Any, key: str, seeds: tuple[int, ...]) -> tuple[str, tuple[int, ...] | None]:
    """``selection:`` → (metric, selection seeds or None for the same-seeds protocol)."""
    if isinstance(raw, str):
        return raw, None
    if not isinstance(raw, dict):
        raise LeaderboardError(f"{key}: expected '<metric>.<key>' or {{metric: <metric>.<key>, seeds: [..]}}, "
                               f"got {raw!r}")
    check_keys(f"{key}.", raw, _SELECTION_KEYS, error=LeaderboardError)
    metric = raw.get("metric")
    if not isinstance(metric, str):
        raise LeaderboardError(f"{key}.metric: expected '<metric>.<key>' (e.g. dci.disentanglement), got {metric!r}")
    if "seeds" not in raw:
        return metric, None
    chosen = raw["seeds"]
    if not isinstance(chosen, list) or not chosen or not all(_is_int(s) for s in chosen):
        raise LeaderboardError(f"{key}.seeds: expected a non-empty list of the study's seeds (ints), got {chosen!r}")
    if len(set(chosen)) != len(chosen):
        raise LeaderboardError(f"{key}.seeds: seed {next(s for s in chosen if chosen.count(s) > 1)} is listed twice")
    stray = [s for s in chosen if s not in seeds]
    if stray:
        raise LeaderboardError(f"{key}.seeds: seed {stray[0]} is not a seed of this study (seeds: {_seeds(seeds)})")
    if set(chosen) >= set(seeds):
        raise LeaderboardError(f"{key}.seeds: selects on every seed of the study ({_seeds(seeds)}), leaving none "
                               "to judge on; list fewer, or give selection as a string to select and judge on "
                               "the same seeds")
    return metric, tuple(chosen)


def _check_selection(spec, selection: str, raw: dict[str, Any], where: str, columns: list[str] | None) -> None:
    """The selection column is one this study computes: its metric is in ``evaluation.metrics``
    and, where the metrics' result keys are known (``columns``), its key is one of them. A
    study that computes no metric makes no board."""
    configured = spec.evaluation.metrics
    if not configured:
        return
    key = f"{where}.selection" + (".metric" if isinstance(raw.get("selection"), Mapping) else "")
    given = "" if "selection" in raw else " (the default; set leaderboard.selection)"
    wrong = f"{key}: {selection!r}{given} is not computed by this study"
    if selection.split(".", 1)[0] not in configured:
        raise LeaderboardError(f"{wrong}; evaluation.metrics has {', '.join(configured)}")
    if columns is not None and selection not in columns:
        raise LeaderboardError(f"{wrong}{did_you_mean(selection, columns)}; its columns: {', '.join(columns)}")


def parse_claims(raw: Any, where: str, labels: list[str]) -> tuple[Claim, ...]:
    """``leaderboard.claims`` → Claims; errors name the key and list the method labels."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise LeaderboardError(f"{where}.claims: expected a list of {{claim, better, than}}, got {raw!r}")
    claims = []
    for i, entry in enumerate(raw):
        key = f"{where}.claims[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"claim", "better", "than"}:
            raise LeaderboardError(f"{key}: expected exactly the keys claim, better, than; got {entry!r}")
        for side in ("better", "than"):
            if entry[side] not in labels:
                raise LeaderboardError(f"{key}.{side}: {entry[side]!r} is not a method label of this study; "
                                       f"labels: {', '.join(labels)}")
        claims.append(Claim(str(entry["claim"]), str(entry["better"]), str(entry["than"])))
    return tuple(claims)


# The training settings that decide a run's initialisation and data stream besides its seed
# (harness/train.py: the model's shape, and how many samples each step draws).
_PAIRING_KEYS = ("batch_size", "latent_dim")


def _check_pairing(spec, claims: tuple[Claim, ...], where: str) -> None:
    """Paired claims need both methods' runs of a seed to share initialisation and data order."""
    by_label = {m.label: m for m in spec.methods}
    for i, c in enumerate(claims):
        a, b = (spec.method_train(by_label[label]) for label in (c.better, c.than))
        for key in _PAIRING_KEYS:
            va, vb = getattr(a, key), getattr(b, key)
            if va != vb:
                raise LeaderboardError(
                    f"{where}.claims[{i}]: {c.better} and {c.than} train with different {key} ({va} vs {vb}), so "
                    f"their runs of one seed do not share initialisation and data order; set "
                    f"leaderboard.claims_test: welch for an unpaired comparison")


@dataclass(frozen=True)
class Reference:
    """Published values a method's row is compared with (``methods[].reference.<dataset>``)."""

    values: FrozenMap  # <metric>.<key> -> float
    source: str = ""


def references(spec) -> dict[tuple[str, str], Reference]:
    """``{(dataset, method label): Reference}`` from ``methods[].reference``; a loaded spec
    carries them, checked at load (``spec.leaderboard.references``).

    The spec's shape: ``reference: {<dataset>: {<metric>.<key>: value, source: "paper Table 1"}}``.
    """
    if spec.leaderboard.references is not None:
        return dict(spec.leaderboard.references)
    datasets = [d for d, _ in spec.datasets]
    out = {}
    where = spec.path or "<study spec>"
    for m in spec.methods:
        for ds, entry in (m.reference or {}).items():
            key = f"{where}: methods[{m.label}].reference.{ds}"
            if ds not in datasets:
                raise LeaderboardError(f"{key}: not a dataset of this study ({', '.join(datasets)})")
            if not isinstance(entry, Mapping):
                raise LeaderboardError(f"{key}: expected {{<metric>.<key>: value, source: text}}, got {entry!r}")
            values, source = {}, str(entry.get("source", ""))
            for col, v in entry.items():
                if col == "source":
                    continue
                if "." not in col or not isinstance(v, numbers.Real) or isinstance(v, bool):
                    raise LeaderboardError(f"{key}.{col}: expected '<metric>.<key>: number', got {col!r}: {v!r}")
                values[col] = float(v)
            out[(ds, m.label)] = Reference(FrozenMap(values), source)
    return out


def check_section(where: str, raw: Any, spec, full: bool) -> LeaderboardSpec:
    """The study spec's ``leaderboard:`` block and its methods' ``reference:`` entries, as the
    spec loads (a :class:`gmgbench.harness.spec.SectionCheck`): the Options and References
    checked against the study, and with ``full`` the selection against the columns its
    metrics compute (which imports the metrics)."""
    columns = None
    if full:
        from gmgbench import metrics  # late: `gmgbench status` reads a spec without the metrics' modules

        columns = [f"{m}.{k}" for m in spec.evaluation.metrics for k in metrics.result_keys(m)]
    options = Options._check(spec, columns)
    return LeaderboardSpec(spec.leaderboard.raw, options, FrozenMap(references(spec)))
