"""Stale results: a finished run whose method code has changed since it ran.

Every result records ``method_code`` — per method (objective and each regulariser) the
hash of its code and of each file in it (:mod:`methods.source` defines which files) — and
every checkpoint records the same. A recorded run is stale when one of its recorded files
hashes differently now. Results written before that record only ``method_source``, the
hash of the single file that registered each method; they are compared with that file.

- ``gmgbench run`` and ``gmgbench status`` name stale runs (they are kept; ``--force``
  reruns them);
- resuming a checkpoint written by other method code is refused (``--force`` starts over);
- the leaderboard refuses to average one cell over runs of different method code unless
  ``--allow-stale`` (:func:`code_signature` tells the versions apart).
See docs/store.md.
"""
from __future__ import annotations

from typing import Any

__all__ = ["current_code", "code_changes", "recorded_changes", "stale_reasons", "code_signature"]


def _methods(run) -> list[tuple[str, str]]:
    return [(run.objective, "objective"), *((name, "regulariser") for name, _ in run.regularisers)]


def current_code(run) -> dict[str, dict[str, Any]]:
    """``{method name: {"sha256", "files"[, "root"]}}`` of the code ``run`` would run now."""
    from methods import source

    return {name: source.method_code(name, kind) for name, kind in _methods(run)}


def code_changes(recorded: Any) -> list[str]:
    """``"gmg: methods/ot/torch_gw.py changed"`` per method of a ``method_code`` record whose
    files changed since it was written (empty for no record: nothing to compare)."""
    from methods.source import changed_files

    out = []
    for name, code in sorted((recorded or {}).items()) if isinstance(recorded, dict) else []:
        if isinstance(code, dict):
            changed = changed_files(code)
            if changed:
                out.append(f"{name}: {', '.join(changed)} changed")
    return out


def recorded_changes(result: dict[str, Any]) -> list[str]:
    """What changed in the method code a result records, without importing any method (so
    ``gmgbench status`` stays light): its ``method_code`` files, or for an older result the
    single file of each built-in method (``method_source``)."""
    recorded = result.get("method_code")
    if isinstance(recorded, dict) and recorded:
        return code_changes(recorded)
    legacy = result.get("method_source")
    if not isinstance(legacy, dict):
        return []
    from methods.source import builtin_file, file_hash

    out = []
    for name, old in sorted(legacy.items()):
        label = builtin_file(name)
        if label is not None and old and file_hash(label) != old:
            out.append(f"{name}: {label} changed")
    return out


def stale_reasons(run, result: dict[str, Any]) -> list[str]:
    """Why a stored result of ``run`` no longer matches its method code (empty: it matches,
    or the result records no code to compare). Also judges an older result's plugin methods,
    through the registry (``gmgbench run`` has loaded them)."""
    out = recorded_changes(result)
    legacy = result.get("method_source")
    if not result.get("method_code") and isinstance(legacy, dict):
        from methods import registry
        from methods.source import builtin_file

        for name, kind in _methods(run):
            if builtin_file(name) is None and legacy.get(name) and legacy[name] != registry.source_hash(name, kind):
                out.append(f"{name}: {registry.origin(name, kind)} changed")
    return out


def code_signature(result: dict[str, Any]) -> str:
    """One string per version of the code a result ran (``beta_vae=…;gmg=…``), for grouping."""
    recorded = result.get("method_code")
    if isinstance(recorded, dict) and recorded:
        items = {k: (v.get("sha256", "") if isinstance(v, dict) else str(v)) for k, v in recorded.items()}
    else:
        legacy = result.get("method_source")
        if not isinstance(legacy, dict) or not legacy:
            return ""
        # Results that recorded only the registering file: another hash scheme, marked as such.
        items = {k: f"file:{v}" for k, v in legacy.items()}
    return ";".join(f"{k}={v}" for k, v in sorted(items.items()))
