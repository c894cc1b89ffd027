"""Side-by-side timing for the speed benchmarks: candidates measured in turn, round after round,
so that load on a shared machine hits them all alike, and reported as ratios to a baseline
(the project's rule: speed targets are ratios measured side by side, never timed assertions)."""
from __future__ import annotations

import statistics
from typing import Callable, Hashable, Iterable


def interleaved(benchmark, measure: Callable[[Hashable], float], names: Iterable[Hashable],
                rounds: int) -> dict[Hashable, list[float]]:
    """``{name: [seconds per round]}``: ``measure(name)`` for each name in turn, ``rounds`` times,
    under pytest-benchmark's ``benchmark`` fixture (one of its rounds is one pass over all)."""
    names = list(names)
    times: dict[Hashable, list[float]] = {name: [] for name in names}

    def round_robin():
        for name in names:
            times[name].append(measure(name))

    benchmark.pedantic(round_robin, rounds=rounds, iterations=1)
    return times


def ratios(times: dict[Hashable, list[float]], base: Hashable) -> dict[Hashable, tuple[float, float]]:
    """``{name: (median seconds, median / the median of base)}`` for the ``times`` of :func:`interleaved`."""
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    return {name: (med, med / medians[base]) for name, med in medians.items()}
