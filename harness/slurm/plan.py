"""Planning a launch: runs grouped by resource set, chunked to the array size, with the
profile's parallelism cap shared out among the arrays."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from gmgbench.harness.slurm.profile import Profile
from gmgbench.harness.spec import RunSpec

__all__ = ["ArrayPlan", "plan_arrays", "group_runs", "chunk", "split_parallelism", "run_resources", "resource_notes",
           "describe_methods"]


@dataclass(frozen=True)
class ArrayPlan:
    """One job array: runs that share a resource set, at most ``max_array_size`` of them."""

    name: str  # the Slurm job name; unique per launch, so a dead launcher's arrays can be found
    resources: dict[str, Any]
    runs: tuple[RunSpec, ...]
    parallelism: int

    @property
    def array_spec(self) -> str:
        n = len(self.runs)
        return f"0-{n - 1}%{min(n, self.parallelism)}"


def run_resources(run: RunSpec, profile: Profile) -> dict[str, Any]:
    """Profile defaults, overridden by the study's and the method's ``resources:``, then
    capped to the profile's ``limits`` (a cluster's maxima live in its profile); plain data
    again (submitit and the journal take dicts and lists)."""
    return profile.cap({**profile.resources, **run.resources.to_dict()})[0]


def resource_notes(runs: Iterable[RunSpec], profile: Profile, verbose: bool = False) -> list[str]:
    """What the launcher changed or took from the spec: each study/method value that overrides
    the profile's or that the profile does not set at all (a CPU profile must not plan GPU
    jobs silently), and each request capped to the profile's limits, with the runs' methods
    (grouped: see :func:`describe_methods`)."""
    runs = list(runs)
    overridden: dict[tuple[str, str, str], set[str]] = {}
    added: dict[tuple[str, str], set[str]] = {}
    capped: dict[tuple[str, str, str], set[str]] = {}
    for run in runs:
        spec_resources = run.resources.to_dict()  # plain data, comparable with the profile's
        for name, value in spec_resources.items():
            if name not in profile.resources:
                added.setdefault((name, repr(value)), set()).add(run.method)
            elif profile.resources[name] != value:
                overridden.setdefault((name, repr(profile.resources[name]), repr(value)), set()).add(run.method)
        for name, (asked, given) in profile.cap({**profile.resources, **spec_resources})[1].items():
            capped.setdefault((name, repr(asked), repr(given)), set()).add(run.method)

    def who(methods: set[str]) -> str:
        return describe_methods(methods, runs, verbose)

    notes = [f"{name}: the study sets {new} over the profile's {old} ({who(m)})"
             for (name, old, new), m in sorted(overridden.items())]
    notes += [f"{name}: the study asks {new}, which the profile does not set ({who(m)})"
              for (name, new), m in sorted(added.items())]
    notes += [f"{name}: asked {asked}, capped to the profile's limit {given} ({who(m)})"
              for (name, asked, given), m in sorted(capped.items())]
    return notes


def describe_methods(methods: set[str], runs: list[RunSpec], verbose: bool = False, most: int = 4) -> str:
    """A set of method labels in a few words: its names when few (or ``verbose``), else "all N
    methods", "the N methods with gmg" / "without gmg" when a regulariser tells them apart,
    else a count and the first names (a paper-sized study has 56 labels per line otherwise)."""
    names = sorted(methods)
    if verbose or len(names) <= most:
        return ", ".join(names)
    regs: dict[str, set[str]] = {}
    for run in runs:
        regs.setdefault(run.method, set()).update(name for name, _ in run.regularisers)
    if set(names) == set(regs):
        return f"all {len(names)} methods"
    for reg in sorted(set().union(*regs.values())):
        having = {m for m, rs in regs.items() if reg in rs}
        if set(names) == having:
            return f"the {len(names)} methods with {reg}"
        if set(names) == set(regs) - having:
            return f"the {len(names)} methods without {reg}"
    return f"{len(names)} methods: {', '.join(names[:3])}, …; --verbose lists them"


def group_runs(runs: Iterable[RunSpec], profile: Profile) -> list[tuple[dict[str, Any], list[RunSpec]]]:
    """Runs grouped by identical resources, in order of first appearance."""
    groups: dict[str, tuple[dict[str, Any], list[RunSpec]]] = {}
    for run in runs:
        res = run_resources(run, profile)
        key = json.dumps(res, sort_keys=True, default=str)
        groups.setdefault(key, (res, []))[1].append(run)
    return list(groups.values())


def chunk(items: list, size: int) -> list[list]:
    if size <= 0:
        raise ValueError(f"chunk size must be > 0, got {size}")
    return [items[i:i + size] for i in range(0, len(items), size)]


def split_parallelism(sizes: list[int], cap: int) -> list[int]:
    """Per-array ``%N`` limits, about proportional to the sizes, that sum to at most ``cap``.

    Slurm's limit applies to one array; splitting it keeps the profile's cap for the whole
    launch. Every array gets at least 1 (so with more arrays than ``cap`` the sum is the
    number of arrays), and none more than its size.
    """
    alloc = [1] * len(sizes)
    spare = cap - len(sizes)
    while spare > 0:
        open_ = [i for i in range(len(sizes)) if alloc[i] < sizes[i]]
        if not open_:
            break
        i = max(open_, key=lambda j: (sizes[j] / alloc[j], -j))
        alloc[i] += 1
        spare -= 1
    return alloc


def plan_arrays(runs: Iterable[RunSpec], profile: Profile, max_array_size: int, prefix: str) -> list[ArrayPlan]:
    """One array per resource set, cut into pieces of at most ``max_array_size`` tasks;
    ``profile.array_parallelism`` is shared out among all of them."""
    parts = []
    for g, (res, group) in enumerate(group_runs(runs, profile)):
        for c, part in enumerate(chunk(group, max_array_size)):
            parts.append((f"{prefix}-r{g}-c{c}", res, tuple(part)))
    caps = split_parallelism([len(p[2]) for p in parts], profile.array_parallelism)
    return [ArrayPlan(name, res, part, cap) for (name, res, part), cap in zip(parts, caps)]
