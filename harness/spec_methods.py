"""A study's ``methods:`` entries: each method's objective and regularisers, with their grids.

:func:`parse_method` checks one entry of a study spec: every parameter against the method's
own ``Config`` (found in :mod:`gmgbench.methods.registry`: built in, a plugin file, an
installed package), each grid point's Config built here, once, and carried to training
(:class:`GridPoint`, then :class:`~gmgbench.harness.run_spec.RunSpec`); the method's training
settings resolved once (:attr:`MethodSpec.settings`). :mod:`gmgbench.harness.spec` puts the
methods into the study.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Iterable

from gmgbench.harness.errors import did_you_mean
from gmgbench.harness.run_spec import TrainSettings
from gmgbench.harness.sections import FrozenMap, frozen_map
from gmgbench.harness.spec_values import (as_list, as_mapping, check_spec_keys, fail, is_int, is_number,
                                          text_hint)

__all__ = ["GridPoint", "RegulariserSpec", "MethodSpec", "parse_method"]

_METHOD_KEYS = {"label", "objective", "params", "regularisers", "train", "resources", "reference"}
_REG_KEYS = {"name", "params"}


@dataclass(frozen=True)
class GridPoint:
    """One combination of a method's parameter grid: the values as written (hashed into the
    run id) and the method's ``Config`` built from them at load (None when the spec was
    parsed without checking methods)."""

    params: FrozenMap
    config: Any = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "params", frozen_map(self.params))


@dataclass(frozen=True)
class RegulariserSpec:
    name: str
    params: FrozenMap  # as written: a list value (frozen as a tuple) is a grid axis
    grid: tuple[GridPoint, ...] = field(default=(), compare=False)

    def __post_init__(self):
        object.__setattr__(self, "params", frozen_map(self.params))

    def points(self) -> tuple[GridPoint, ...]:
        return self.grid or tuple(GridPoint(p) for p in _grid(self.params))


@dataclass(frozen=True)
class MethodSpec:
    """One method entry: an objective and regularisers, each with a parameter grid."""

    label: str
    objective: str
    params: FrozenMap  # as written: a list value (frozen as a tuple) is a grid axis
    regularisers: tuple[RegulariserSpec, ...] = ()
    train: FrozenMap = field(default_factory=FrozenMap)  # overrides of the study's, as written
    resources: FrozenMap = field(default_factory=FrozenMap)  # submitit parameters, over the study's
    reference: FrozenMap = field(default_factory=FrozenMap)  # as written; typed: spec.leaderboard.references
    grid: tuple[GridPoint, ...] = field(default=(), compare=False)  # the objective's, with built Configs
    # The study's settings overridden by ``train``, resolved at load; None for a method read
    # back from data or built by hand (StudySpec.method_train resolves those).
    settings: TrainSettings | None = field(default=None, compare=False)

    def __post_init__(self):
        for key in ("params", "train", "resources", "reference"):
            object.__setattr__(self, key, frozen_map(getattr(self, key)))

    def points(self) -> tuple[GridPoint, ...]:
        return self.grid or tuple(GridPoint(p) for p in _grid(self.params))




# -- parsing -----------------------------------------------------------------------------------
def _grid(params: dict[str, Any]) -> list[dict[str, Any]]:
    """A list value is a grid axis; scalars are fixed. Sorted keys keep ids stable."""
    keys = sorted(params)
    # YAML gives lists; a frozen spec holds them as tuples: either is an axis.
    axes = [params[k] if isinstance(params[k], (list, tuple)) else [params[k]] for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def _param_type_error(cls: type, params: dict[str, Any]) -> tuple[str, str] | None:
    """(parameter, message) for a value whose type the Config's annotation rules out."""
    try:
        hints = typing.get_type_hints(cls.Config)
    except Exception:  # noqa: BLE001 - an annotation we cannot resolve: the Config checks itself
        return None
    for key, value in params.items():
        hint = hints.get(key)
        if hint is float and not is_number(value):
            return key, f"expected a number, got {value!r}{text_hint(value)}"
        if hint is int and not is_int(value):
            return key, f"expected an integer, got {value!r}"
        if hint is bool and not isinstance(value, bool):
            return key, f"expected true or false, got {value!r}"
        if hint is str and not isinstance(value, str):
            return key, f"expected a string, got {value!r}"
    return None


def _parse_term(where: str, key: str, name: Any, kind: str, params: Any,
                check_methods: bool) -> tuple[dict[str, Any], tuple[GridPoint, ...]]:
    """A method term's parameters, checked, and its grid with each point's Config built."""
    params = as_mapping(where, f"{key}.params", params, f"{kind} parameters (a list value is a grid)")
    for p, value in params.items():
        if isinstance(value, list) and not value:
            raise fail(where, f"{key}.params.{p}", "an empty grid: give at least one value")
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float) and not math.isfinite(v):  # YAML reads .inf / .nan as floats
                raise fail(where, f"{key}.params.{p}", f"{v!r} is not a finite number; training would stop "
                                                       "at its first step with a non-finite loss")
    if not check_methods:
        return params, ()
    from gmgbench.methods import registry  # late: methods import torch, which `gmgbench status` never needs

    try:
        cls = registry.get(name, kind)
    except KeyError:
        msg = registry.unknown(name, kind, did_you_mean(name, registry.names(kind)))
        raise fail(where, key if kind == "regulariser" else f"{key}.objective", msg) from None
    fields = [f.name for f in dataclasses.fields(cls.Config)]
    check_spec_keys(where, f"{key}.params.", params, fields)
    points = []
    for combo in _grid(params):
        bad = _param_type_error(cls, combo)
        if bad:
            raise fail(where, f"{key}.params.{bad[0]}", bad[1])
        try:
            config = registry.make_config(cls, combo)
        except (KeyError, ValueError) as err:
            raise fail(where, f"{key}.params", err.args[0]) from None
        weight = getattr(config, "weight", None)
        if kind == "regulariser" and is_number(weight) and weight < 0:
            raise fail(where, f"{key}.params.weight", f"a negative weight ({weight!r}) turns the penalty into a "
                                                        "reward; use ≥ 0")
        points.append(GridPoint(combo, config))
    return params, tuple(points)


def _entry(where: str, key: str, raw: Any, name_key: str, valid: Iterable[str], shape: str) -> dict[str, Any]:
    """A method or regulariser entry: ``NAME`` or a mapping with ``name_key`` and known keys."""
    if isinstance(raw, str):
        raw = {name_key: raw}
    if not isinstance(raw, dict) or not isinstance(raw.get(name_key), str):
        raise fail(where, key, shape)
    check_spec_keys(where, f"{key}.", raw, valid)
    return raw


def parse_method(where: str, i: int, m: Any, study_train: dict[str, Any], check_methods: bool) -> MethodSpec:
    key = f"methods[{i}]"
    m = _entry(where, key, m, "objective", _METHOD_KEYS, "a method is {objective: NAME, params: {...}, regularisers: [...]}")
    params, grid = _parse_term(where, key, m["objective"], "objective", m.get("params"), check_methods)
    regs = []
    for j, r in enumerate(as_list(where, f"{key}.regularisers", m.get("regularisers"), "regularisers")):
        rkey = f"{key}.regularisers[{j}]"
        r = _entry(where, rkey, r, "name", _REG_KEYS, "a regulariser is NAME or {name: NAME, params: {...}}")
        rparams, rgrid = _parse_term(where, rkey, r["name"], "regulariser", r.get("params"), check_methods)
        regs.append(RegulariserSpec(r["name"], rparams, rgrid))
    label = m.get("label") or "+".join([m["objective"], *(r.name for r in regs)])
    if not isinstance(label, str):
        raise fail(where, f"{key}.label", f"expected a string, got {label!r}")
    mtrain = TrainSettings.check(where, f"{key}.train.", m.get("train"))
    try:
        settings = TrainSettings(**{**study_train, **mtrain})  # built once per method, here
    except (TypeError, ValueError) as err:
        raise fail(where, f"{key}.train", str(err)) from None
    resources = as_mapping(where, f"{key}.resources", m.get("resources"), "submitit parameters")
    reference = as_mapping(where, f"{key}.reference", m.get("reference"), "{dataset: {values: {...}, source: ...}}")
    return MethodSpec(label, m["objective"], params, tuple(regs), mtrain, resources, reference, grid, settings)
