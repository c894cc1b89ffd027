"""Stale results: a finished run whose method code has changed since it ran.

Every result records ``method_code`` — per method (objective and each regulariser) the
hash of its code and of each file in it (:mod:`gmgbench.methods.source` defines which files) — and
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

__all__ = ["current_code", "code_changes", "recorded_changes", "stale_reasons", "code_signature", "plugin_dirs"]


def _methods(run) -> list[tuple[str, str]]:
    return [(run.objective, "objective"), *((name, "regulariser") for name, _ in run.regularisers)]


def current_code(run) -> dict[str, dict[str, Any]]:
    """``{method name: {"sha256", "files"[, "root"]}}`` of the code ``run`` would run now."""
    from gmgbench.methods import source

    return {name: source.method_code(name, kind) for name, kind in _methods(run)}


def code_changes(recorded: Any, now: dict[str, dict[str, Any]] | None = None,
                 plugin_dirs: tuple[str, ...] = ()) -> list[str]:
    """``"gmg: methods/ot/torch_gw.py changed"`` per method of a ``method_code`` record whose
    files changed since it was written (empty for no record: nothing to compare).

    By content, never by the absolute folder a plugin was loaded from: with ``now`` (the
    :func:`current_code` of the run, methods loaded) each method's files are compared with
    the files the spec loads now; without it, the recorded files are re-hashed, a plugin's
    in the folder of ``plugin_dirs`` (the spec's plugin folders now) that holds them. So a
    copied project is judged by its own copy, and an unchanged copy is not stale once the
    original folder is gone."""
    from gmgbench.methods.source import changed_files

    out = []
    for name, code in sorted((recorded or {}).items()) if isinstance(recorded, dict) else []:
        if not isinstance(code, dict):
            continue
        current = (now or {}).get(name)
        if isinstance(current, dict) and current.get("files"):
            changed = _differing(code.get("files") or {}, current["files"])
        else:
            changed = changed_files(_rerooted(code, plugin_dirs))
        if changed:
            out.append(f"{name}: {', '.join(changed)} changed")
    return out


def _differing(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Labels whose hash differs, with `` (gone)`` / `` (new)`` for a file on one side only."""
    out = []
    for label in sorted(set(old) | set(new)):
        if old.get(label) != new.get(label):
            out.append(label + (" (gone)" if label not in new else " (new)" if label not in old else ""))
    return out


def _rerooted(code: dict[str, Any], plugin_dirs: tuple[str, ...]) -> dict[str, Any]:
    """A plugin's recorded code with its ``root`` moved to the spec's plugin folder (of
    ``plugin_dirs``) that holds most of its recorded files now (the recorded folder wins a
    tie); unchanged for built-ins, entry points and when no folder holds any of them."""
    root = code.get("root")
    labels = [label for label in (code.get("files") or {}) if not label.startswith("methods/")]
    if not root or not plugin_dirs or not labels:
        return code
    from pathlib import Path

    def held(folder: str) -> int:
        return sum((Path(folder) / label).is_file() for label in labels)

    best = max(dict.fromkeys(plugin_dirs), key=lambda d: (held(d), d == root))
    return {**code, "root": best} if held(best) else code


def recorded_changes(result: dict[str, Any], plugin_dirs: tuple[str, ...] = ()) -> list[str]:
    """What changed in the method code a result records, without importing any method (so
    ``gmgbench status`` stays light): its ``method_code`` files (a plugin's looked for in
    ``plugin_dirs``, the folders of the spec's plugins now), or for an older result the
    single file of each built-in method (``method_source``)."""
    recorded = result.get("method_code")
    if isinstance(recorded, dict) and recorded:
        return code_changes(recorded, plugin_dirs=plugin_dirs)
    legacy = result.get("method_source")
    if not isinstance(legacy, dict):
        return []
    from gmgbench.methods.source import builtin_file, file_hash

    out = []
    for name, old in sorted(legacy.items()):
        label = builtin_file(name)
        if label is not None and old and file_hash(label) != old:
            out.append(f"{name}: {label} changed")
    return out


def plugin_dirs(plugins: Any) -> tuple[str, ...]:
    """The folders of a spec's plugin files (absolute, as ``load_spec`` resolves them)."""
    from pathlib import Path

    return tuple(dict.fromkeys(str(Path(p).parent) for p in plugins or ()))


def stale_reasons(run, result: dict[str, Any]) -> list[str]:
    """Why a stored result of ``run`` no longer matches its method code (empty: it matches,
    or the result records no code to compare): the recorded files against those the spec
    loads now (``gmgbench run`` has loaded the methods). Also judges an older result's
    plugin methods, through the registry."""
    recorded = result.get("method_code")
    if isinstance(recorded, dict) and recorded:
        return code_changes(recorded, now=current_code(run))
    out = recorded_changes(result)
    legacy = result.get("method_source")
    if isinstance(legacy, dict):
        from gmgbench.methods import registry
        from gmgbench.methods.source import builtin_file

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
