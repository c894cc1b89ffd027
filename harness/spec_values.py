"""A study spec's values: the one error a bad one raises, and the exact-type checks.

Every section parser of :mod:`gmgbench.harness.spec` (and :mod:`~gmgbench.harness.spec_methods`,
:mod:`~gmgbench.harness.run_spec`) checks its values here, so a study spec has one notion of
"an integer" (a bool is no int, ``"3"`` is no number) and one shape of error: a
:class:`SpecError` line ``<file>: <key>: <what is wrong>``. The metric settings are checked
here too, against each metric's own defaults (``gmgbench evaluate --metrics`` uses the
same check).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

from gmgbench.harness.errors import UserError, check_keys, did_you_mean

__all__ = ["SpecError", "fail", "check_spec_keys", "is_int", "is_number", "text_hint", "as_int", "as_number",
           "as_mapping", "as_list", "check_metric_settings"]


class SpecError(UserError, ValueError):
    """The study spec is invalid; the message names the file and the key."""


def fail(where: str, key: str, msg: str) -> SpecError:
    return SpecError(f"{where}: {key}: {msg}")


def check_spec_keys(where: str, prefix: str, got: dict, valid: Iterable[str]) -> None:
    check_keys(f"{where}: {prefix}", got, valid, error=SpecError)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def text_hint(value: Any) -> str:
    # YAML 1.1 (PyYAML) reads 1e-4 without a dot as text, a common surprise.
    return " (YAML reads 1e-4 as text: write 1.0e-4 or 0.0001)" if isinstance(value, str) and "e" in value.lower() else ""


def as_int(where: str, key: str, value: Any, minimum: int) -> int:
    if not is_int(value) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise fail(where, key, f"expected {what}, got {value!r}")
    return value


def as_number(where: str, key: str, value: Any, *, positive: bool = False) -> float:
    if not is_number(value) or not math.isfinite(value) or (positive and value <= 0):
        what = "a positive number" if positive else "a number"
        raise fail(where, key, f"expected {what}, got {value!r}{text_hint(value)}")
    return value


def as_mapping(where: str, key: str, value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(where, key, f"expected a mapping of {what}, got {value!r}")
    return dict(value)


def as_list(where: str, key: str, value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(where, key, f"expected a list of {what}, got {value!r}")
    return value


def check_metric_settings(where: str, prefix: str, metrics_cfg: Any) -> None:
    """``{metric: {setting: value}}`` against the metrics' own signatures (keys named
    ``prefix<metric>``): known names, known settings, and each value of its default's type
    (a count stays a positive integer)."""
    from gmgbench import metrics  # late: the metrics' modules are not needed to read a spec's shape

    if not isinstance(metrics_cfg, dict):
        raise fail(where, prefix.rstrip(".") or "metrics", "expected a mapping of metric name -> settings")
    valid = metrics.names()
    for mname, kwargs in metrics_cfg.items():
        if mname not in valid:
            raise fail(where, f"{prefix}{mname}", f"unknown metric{did_you_mean(mname, valid)}; "
                                                  f"valid metrics: {', '.join(valid)}")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise fail(where, f"{prefix}{mname}", "metric settings are a mapping of keyword arguments")
        defaults = metrics.settings_of(mname)
        check_spec_keys(where, f"{prefix}{mname}.", kwargs or {}, defaults)
        for key, value in (kwargs or {}).items():
            default, at = defaults[key], f"{prefix}{mname}.{key}"
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise fail(where, at, f"expected true or false, got {value!r}")
            elif is_int(default) and default > 0:
                as_int(where, at, value, 1)
            elif isinstance(default, float):
                as_number(where, at, value)
