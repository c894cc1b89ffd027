"""``--set key=value`` and ``--only dataset=… method=… seed=…``: edits of the spec's YAML.

Both act on the raw mapping read from the file, before validation, so an override goes
through every check a spec edit does and changes run ids exactly as editing the file
would (``--set train.steps=100`` ≡ writing ``steps: 100`` under ``train:``). ``--only``
keeps a subset of datasets, methods and seeds; a run's id does not depend on which other
runs a study has, so the runs it keeps are the very runs of the full study.

A section given in the spec (``train``, a method's ``params``) is replaced only by another
mapping (``--set 'evaluation.metrics={mig: {}}'``); ``--set train=`` or ``--set train=5`` is
refused, as it would silently drop every setting of the section.

Keys are dotted paths into the YAML: ``train.steps``, ``evaluation.metrics.mig.num_train``,
``methods.1.params.beta`` (a list index), or ``methods.beta_vae+gmg.params.beta`` (a
method by its label; ``methods[1]`` works too). Values are YAML (``[1, 4]`` is a grid
axis, ``true``, ``null``); a number written ``1e-4`` is a number, as on a command line
one means.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Iterable

from gmgbench.harness.errors import UserError

__all__ = ["apply_sets", "apply_only", "parse_only", "ONLY_KEYS", "OverrideError"]

ONLY_KEYS = ("dataset", "method", "seed")


class OverrideError(UserError, ValueError):
    """A ``--set``/``--only`` that cannot apply; :func:`gmgbench.harness.spec.load_spec` reports it as a spec error."""


def _error(msg: str) -> Exception:
    return OverrideError(msg)


def _value(text: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise _error(f"--set: {text!r} is not a YAML value: {err}") from None
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string; nobody means that here
        try:
            return int(value) if re.fullmatch(r"[-+]?\d+", value) else float(value)
        except ValueError:
            return value
    return value


def _segments(key: str) -> list[str]:
    # methods[1].params -> methods, 1, params
    parts = [p for p in re.split(r"\.|\[|\]", key) if p != ""]
    if not parts:
        raise _error(f"--set {key}=...: empty key")
    return parts


def _method_label(m: Any) -> str | None:
    if isinstance(m, str):
        return m
    if not isinstance(m, dict):
        return None
    if m.get("label"):
        return str(m["label"])
    regs = [r if isinstance(r, str) else (r or {}).get("name", "") for r in m.get("regularisers") or []]
    return "+".join([str(m.get("objective", "")), *regs])


def _child(node: Any, seg: str, item: str, create: bool) -> Any:
    if isinstance(node, list):
        if re.fullmatch(r"-?\d+", seg):
            i = int(seg)
            if not -len(node) <= i < len(node):
                raise _error(f"--set {item}: index {seg} is out of range (the list has {len(node)} entries)")
            return i
        labels = [_method_label(m) for m in node]
        if seg in labels:
            return labels.index(seg)
        valid = ", ".join(str(lab) for lab in labels if lab)
        if not node:
            raise _error(f"--set {item}: no entry {seg!r}: the list is empty")
        where = f"an index from 0 to {len(node) - 1}"
        raise _error(f"--set {item}: no entry {seg!r} in this list; use {where}"
                     + (f" or one of: {valid}" if valid else " (its entries have no labels)"))
    if isinstance(node, dict):
        if seg not in node and not create:
            raise _error(f"--set {item}: no key {seg!r}")
        return seg
    raise _error(f"--set {item}: {seg!r} is below a value ({node!r}), not a mapping or list")


def apply_sets(raw: Any, items: Iterable[str]) -> Any:
    """A copy of ``raw`` with each ``key=value`` of ``items`` applied in order."""
    items = list(items or [])
    if not items:
        return raw
    if not isinstance(raw, dict):
        return raw  # parse_spec reports the file's own problem
    raw = copy.deepcopy(raw)
    for item in items:
        if "=" not in item:
            raise _error(f"--set {item}: expected key=value, e.g. train.steps=100")
        key, text = item.split("=", 1)
        segs = _segments(key.strip())
        node = raw
        for depth, seg in enumerate(segs):
            last = depth == len(segs) - 1
            idx = _child(node, seg, item, create=True)
            if last:
                value = _value(text)
                old = node[idx] if isinstance(node, list) or idx in node else None
                if isinstance(old, dict) and old and not isinstance(value, dict):
                    # `--set train=` would drop every training setting the spec gives
                    raise _error(f"--set {item}: would replace the whole {key.strip()!r} section "
                                 f"({', '.join(map(str, old))}) by {text.strip() or 'nothing'!r}; set one of its "
                                 f"keys instead, e.g. {key.strip()}.{next(iter(old))}=VALUE")
                node[idx] = value
            else:
                if isinstance(node, dict) and (idx not in node or node[idx] is None):
                    node[idx] = {}  # a new section; validation names it if it is not a valid key
                node = node[idx]
                if isinstance(node, str) and isinstance(segs[depth + 1], str):
                    # `methods: [beta_vae]` shorthand: a method given by name becomes a mapping
                    raise _error(f"--set {item}: {seg!r} is the shorthand {node!r}; write it out as a mapping "
                                 "in the spec to set its keys")
    return raw


def parse_only(items: Iterable[str]) -> dict[str, list[str]]:
    """``["dataset=a,b", "seed=0"]`` -> ``{"dataset": ["a", "b"], "seed": ["0"]}`` (values of a
    repeated key add up)."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or key not in ONLY_KEYS:
            raise _error(f"--only {item}: expected one of {', '.join(k + '=...' for k in ONLY_KEYS)} "
                         "(comma-separated values)")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not vals:
            raise _error(f"--only {item}: no values")
        out.setdefault(key, []).extend(vals)
    return out


def apply_only(raw: dict, items: Iterable[str], spec) -> dict:
    """A copy of ``raw`` keeping only the datasets, methods and seeds that ``items`` name.

    ``spec`` is ``raw`` parsed (without the method checks): it supplies the method labels
    and the seeds as the spec defines them. Naming something the study does not have is an
    error that lists what it has.
    """
    only = parse_only(items)
    if not only:
        return raw
    raw = copy.deepcopy(raw)
    if "dataset" in only:
        have = [d for d, _ in spec.datasets]
        _check_known("dataset", only["dataset"], have)
        raw["datasets"] = [e for e, (d, _) in zip(raw["datasets"], spec.datasets) if d in only["dataset"]]
    if "method" in only:
        have = [m.label for m in spec.methods]
        _check_known("method", only["method"], have)
        raw["methods"] = [e for e, m in zip(raw["methods"], spec.methods) if m.label in only["method"]]
        board = raw.get("leaderboard")
        if isinstance(board, dict) and isinstance(board.get("claims"), list):
            # A claim compares two methods: it stays only when both of them do.
            board["claims"] = [c for c in board["claims"] if not isinstance(c, dict)
                               or {c.get("better"), c.get("than")} <= set(only["method"])]
    if "seed" in only:
        have = [str(s) for s in spec.seeds]
        _check_known("seed", only["seed"], have)
        raw["seeds"] = [s for s in spec.seeds if str(s) in only["seed"]]
        _held_out_within(raw)
    return raw


def _held_out_within(raw: dict) -> None:
    """Selection on held-out seeds (``selection: {metric, seeds}``) in a seed subset: keep the
    selection seeds the subset has, as long as some seed is left to judge on; otherwise the
    subset's board (a preview of the study's) selects and judges on the same seeds, and its
    header says so. The runs are the same either way: selection only reads results."""
    board = raw.get("leaderboard")
    sel = board.get("selection") if isinstance(board, dict) else None
    if not (isinstance(sel, dict) and isinstance(sel.get("seeds"), list) and isinstance(sel.get("metric"), str)):
        return
    kept = [s for s in sel["seeds"] if s in raw["seeds"]]
    board["selection"] = {**sel, "seeds": kept} if kept and set(kept) < set(raw["seeds"]) else sel["metric"]


def _check_known(key: str, wanted: list[str], have: list[str]) -> None:
    unknown = [w for w in wanted if w not in have]
    if unknown:
        raise _error(f"--only {key}={','.join(unknown)}: not in the study; its {key}s: {', '.join(have)}")
