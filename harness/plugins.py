"""A study's plugins, methods and metrics alike, loaded the same way in every process.

A plugin file (a spec's ``plugins:``) may register methods (``methods/registry.py``), metrics
(``metrics/table.py``) or both; installed packages add either through the entry-point groups
``gmgbench.methods`` and ``gmgbench.metrics``. The spec loader, the local workers and each
Slurm job call :func:`load`, so a metric a study's evaluation names is known wherever it is
computed, and its direction and dlib name wherever a board or an export is built.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from gmgbench.methods import registry
from gmgbench.methods.registry import PluginError
from gmgbench.metrics import table as metric_table

__all__ = ["PluginError", "load", "load_plugin_file", "load_entry_points"]


def load_plugin_file(path: str | Path) -> list[str]:
    """Import one plugin file once; returns the method and metric names it registered. Any
    error is a :class:`PluginError` naming the file, and nothing of a failed file stays
    registered (neither its methods nor its metrics)."""
    label = str(Path(path).resolve())
    try:
        with metric_table.loading(label) as metrics_added:
            methods_added = registry.load_plugin_file(path, registered_elsewhere=lambda: bool(metrics_added))
    except metric_table.MetricError as err:  # one error type for the callers: the file's
        raise PluginError(str(err)) from err
    return methods_added + list(metrics_added)


def load_entry_points(warn: bool = True) -> list[str]:
    """Both entry-point groups, once per process (see the registries for broken packages)."""
    return registry.load_entry_points(warn=warn) + metric_table.load_entry_points(warn=warn)


def load(plugins: Iterable[str | Path] = (), warn: bool = True) -> None:
    """A study's plugin files, then installed packages: the order the spec loader takes."""
    for path in plugins:
        load_plugin_file(path)
    load_entry_points(warn=warn)
