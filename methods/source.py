"""What a method's code is, and its hash: recorded with every result and checkpoint.

A method's code is the file that registers it and every module that file imports,
directly or in a function body, transitively, from the same source tree:

- built-ins: modules of the ``methods`` package (GMG's code is
  ``methods/regularisers/gmg.py``, ``geometric.py``, ``methods/ot/*`` it imports and the
  package ``__init__.py`` files on the way);
- plugin files: the file and the modules beside it that it imports, plus any
  ``gmgbench.methods.*`` module it imports;
- entry-point packages: the registering module and the modules of its own top-level package.

Left out, because they decide how a method is called rather than what it computes, and
change with the harness (whose commit every result records): the method API
``methods/base.py``, ``methods/registry.py``, ``methods/builtins.py`` and this file; and
everything outside the tree (torch, the VAE in ``methods/architectures.py`` unless the
method imports it, the training loop).

The hash is SHA-256 over the sorted ``(file label, SHA-256 of the file's bytes)`` pairs,
so it changes when and only when one of those files' bytes change; the per-file hashes
are recorded too, so a changed method names the file that changed. See docs/store.md.

A file's bytes are read with the import prefix of gmgbench's own packages taken out
(``gmgbench.methods`` reads as ``methods``, likewise ``harness`` and ``metrics``): where
the package is installed is not what a method computes, so moving the folders under the
``gmgbench`` name left every method's hash as it was, and results stored before
the move are not reported as stale code for it.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["code_files", "method_code", "changed_files", "builtin_file", "file_hash", "file_hash_of", "canonical_bytes",
           "API_MODULES"]

_METHODS_DIR = Path(__file__).resolve().parent
_PACKAGE = "gmgbench.methods"  # the import name of _METHODS_DIR
API_MODULES = frozenset(f"{_PACKAGE}.{m}" for m in ("base", "registry", "builtins", "source"))
# The install prefix, taken out before hashing (module docstring).
_PREFIX = re.compile(rb"\bgmgbench\.(?=(?:harness|methods|metrics)\b)")
_FROM_PREFIX = re.compile(rb"^([ \t]*)from gmgbench import (harness|methods|metrics)[ \t]*$", re.M)


def _module_files(name: str, roots: dict[str, Path], plugin_dir: Path | None) -> list[Path]:
    """Files that importing module ``name`` runs (package ``__init__``s too), within the roots."""
    top = next((r for r in sorted(roots, key=len, reverse=True) if name == r or name.startswith(r + ".")), None)
    # A root may be dotted (gmgbench.methods): its name is the first part, then the rest.
    parts = [top, *name[len(top):].split(".")[1:]] if top is not None else name.split(".")
    if top is not None:
        here = roots[top]
    elif plugin_dir is not None and ((plugin_dir / f"{parts[0]}.py").is_file() or (plugin_dir / parts[0]).is_dir()):
        here = plugin_dir / parts[0]
    else:
        return []
    out = []
    for i in range(len(parts)):
        if i:
            here = here / parts[i]
        if ".".join(parts[:i + 1]) in API_MODULES:
            break
        if (here / "__init__.py").is_file():
            out.append(here / "__init__.py")
        elif here.with_suffix(".py").is_file():
            out.append(here.with_suffix(".py"))
            break
        else:
            break
    return out


def _imports(path: Path, package: str | None) -> set[str]:
    """Module names ``path`` imports anywhere (``from a import b`` also tries ``a.b``)."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError, OSError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                if not package:
                    continue
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{mod}" if mod else base
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names if a.name != "*")
    return {n for n in names if n and n not in API_MODULES}


def _package_of(path: Path, roots: dict[str, Path]) -> str | None:
    for top, root in roots.items():
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        return ".".join([top, *rel.parent.parts]) if rel.parent.parts else top
    return None


def code_files(origin_file: str | Path, extra_roots: dict[str, Path] | None = None) -> list[Path]:
    """The files of a method registered in ``origin_file`` (see the module docstring)."""
    origin_file = Path(origin_file).resolve()
    roots = {_PACKAGE: _METHODS_DIR, **(extra_roots or {})}
    in_tree = _package_of(origin_file, roots) is not None
    plugin_dir = None if in_tree else origin_file.parent
    seen: set[Path] = set()
    todo = [origin_file]
    package = _package_of(origin_file, roots)
    if package is not None:  # importing the method's module runs its packages' __init__ files too
        todo += [p.resolve() for p in _module_files(f"{package}.{origin_file.stem}", roots, None)]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for mod in _imports(path, _package_of(path, roots)):
            todo.extend(p.resolve() for p in _module_files(mod, roots, plugin_dir) if p.resolve() not in seen)
    return sorted(seen)


def _label(path: Path, root: Path) -> str:
    """``methods/...`` for gmgbench's own modules (resolved against the installed package),
    else relative to ``root`` (a plugin's folder, an entry-point package's parent)."""
    for base in (_METHODS_DIR.parent, root):
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    return path.as_posix()


def canonical_bytes(data: bytes) -> bytes:
    """``data`` with the ``gmgbench.`` prefix of gmgbench's own package names taken out."""
    return _PREFIX.sub(b"", _FROM_PREFIX.sub(rb"\1import \2", data))


@lru_cache(maxsize=None)
def _file_sha(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(canonical_bytes(path.read_bytes())).hexdigest()[:16]


def _entry_point_roots(cls: type) -> dict[str, Path]:
    top = cls.__module__.split(".")[0]
    mod = sys.modules.get(top)
    paths = list(getattr(mod, "__path__", []) or [])
    return {top: Path(paths[0]).resolve()} if paths and top != "gmgbench" else {}


def method_code(name: str, kind: str) -> dict[str, Any]:
    """``{"sha256": 16 hex digits, "files": {label: 16 hex digits}}`` of a registered method."""
    from gmgbench.methods import registry

    cls = registry.get(name, kind)
    where = registry.origin(name, kind)
    origin = Path(where)
    if not origin.is_file():  # an entry point: the class's own file
        try:
            origin = Path(inspect.getsourcefile(cls) or "")
        except TypeError:
            return {"sha256": "", "files": {}}
        if not origin.is_file():
            return {"sha256": "", "files": {}}
    origin = origin.resolve()
    extra = _entry_point_roots(cls) if where.startswith("entry point ") else {}
    if extra:
        root = next(iter(extra.values())).parent
    elif _package_of(origin, {_PACKAGE: _METHODS_DIR}) is not None:
        root = _METHODS_DIR.parent
    else:
        root = origin.parent
    files = {}
    for path in code_files(origin, extra):
        st = path.stat()
        files[_label(path, root)] = _file_sha(path, st.st_mtime_ns, st.st_size)
    blob = "".join(f"{k}\0{v}\n" for k, v in sorted(files.items()))
    code: dict[str, Any] = {"sha256": hashlib.sha256(blob.encode()).hexdigest()[:16], "files": files}
    if root != _METHODS_DIR.parent:  # built-ins resolve against the installed gmgbench
        code["root"] = str(root)
    return code


def builtin_file(name: str) -> str | None:
    """``methods/....py``: the module that defines built-in method ``name`` (None for others),
    from the built-ins table, without importing it."""
    from gmgbench.methods.builtins import BUILTINS

    for table in BUILTINS.values():
        if name in table:
            module = table[name].split(":")[0].removeprefix("gmgbench.")
            rel = Path(*module.split("."))
            for cand in (rel.with_suffix(".py"), rel / "__init__.py"):
                if (_METHODS_DIR.parent / cand).is_file():
                    return cand.as_posix()
    return None


def file_hash_of(path: Path) -> str:
    """SHA-256 (16 hex digits) of the file at ``path`` as a method's code hashes it."""
    st = Path(path).stat()
    return _file_sha(Path(path), st.st_mtime_ns, st.st_size)


def file_hash(label: str) -> str | None:
    """SHA-256 (16 hex digits) of ``methods/...`` file ``label`` now; None if it is gone."""
    path = _METHODS_DIR.parent / label
    try:
        st = path.stat()
    except OSError:
        return None
    return _file_sha(path, st.st_mtime_ns, st.st_size)


def changed_files(code: dict[str, Any]) -> list[str]:
    """Files of a recorded ``method_code`` entry whose bytes differ now (or that are gone).

    Re-hashing the recorded files is enough: code the method newly imports can only come
    with an edit to a file it already had. Needs no registry, so ``gmgbench status`` can
    call it without importing any method (or torch).
    """
    root = Path(code.get("root") or _METHODS_DIR.parent)
    out = []
    for label, sha in sorted((code.get("files") or {}).items()):
        path = (_METHODS_DIR.parent if label.startswith("methods/") else root) / label
        try:
            st = path.stat()
            now = _file_sha(path, st.st_mtime_ns, st.st_size)
        except OSError:
            now = None
        if now != sha:
            out.append(label + ("" if now is not None else " (gone)"))
    return out
