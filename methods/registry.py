"""The method registry: name -> objective or regulariser class.

Built-ins register themselves with :func:`register` when :mod:`methods.builtins` is
imported. A user's method comes from a drop-in Python file named in the study spec
(``plugins: [my_method.py]``) or from an installed package's entry point in the group
``gmgbench.methods`` (the entry point names a module; importing it registers). Every
error about a method names the file (or entry point) that defines it; see
``docs/new-method.md``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Iterator

from methods.base import Objective, Regulariser, _Configured

__all__ = [
    "PluginError",
    "register",
    "get",
    "names",
    "build",
    "make_config",
    "origin",
    "source_of",
    "source_hash",
    "rebuild",
    "load_plugin_file",
    "load_entry_points",
    "ensure_builtins",
    "isolated",
    "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "gmgbench.methods"
_KINDS = {"objective": Objective, "regulariser": Regulariser}
_REGISTRY: dict[str, dict[str, type[_Configured]]] = {k: {} for k in _KINDS}
_ORIGIN: dict[tuple[str, str], str] = {}
_FILES: dict[str, list[tuple[str, str]]] = {}  # plugin file -> what it registered
_ENTRY_POINTS: set[str] = set()
_loading_from: list[str] = []


class PluginError(ValueError):
    """A method definition or plugin is invalid; the message names the file."""


def _where(cls: type) -> str:
    if _loading_from:
        return _loading_from[-1]
    try:
        return inspect.getsourcefile(cls) or cls.__module__
    except TypeError:
        return cls.__module__


def source_of(cls: type) -> str:
    """The file (or entry point) that registered ``cls``; its source file if unregistered."""
    for (kind, name), where in _ORIGIN.items():
        if _REGISTRY[kind].get(name) is cls:
            return where
    try:
        return inspect.getsourcefile(cls) or cls.__module__
    except TypeError:
        return cls.__module__


def _check_call_signature(cls: type, where: str) -> None:
    try:
        params = list(inspect.signature(cls.__call__).parameters.values())
    except (TypeError, ValueError):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    if not varargs and (len(positional) < 2 or len(required) > 2):
        raise PluginError(f"{where}: {cls.__name__}.__call__ must take exactly one argument besides self: (self, out)")


def register(cls: type[_Configured]) -> type[_Configured]:
    """Class decorator: add an :class:`Objective` or :class:`Regulariser` subclass.

    Checks what a researcher most often gets wrong, and names the file in the error:
    a missing ``name``, a ``Config`` that is not a frozen dataclass or whose defaults
    its own checks reject, a regulariser without a ``weight``, a missing or mis-declared
    ``__call__``, and a name already taken (built-in names cannot be overridden).
    """
    where = _where(cls)
    kind = next((k for k, base in _KINDS.items() if isinstance(cls, type) and issubclass(cls, base)), None)
    if kind is None:
        raise PluginError(f"{where}: {getattr(cls, '__name__', cls)!r} must subclass methods.base.Objective or methods.base.Regulariser")
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name.isidentifier():
        raise PluginError(f"{where}: {cls.__name__}.name must be a Python identifier, got {name!r}")
    cfg_cls = getattr(cls, "Config", None)
    if not (isinstance(cfg_cls, type) and dataclasses.is_dataclass(cfg_cls)):
        raise PluginError(f"{where}: {cls.__name__}.Config must be a @dataclass(frozen=True)")
    if not cfg_cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise PluginError(f"{where}: {cls.__name__}.Config must be frozen: write @dataclass(frozen=True)")
    fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
    if kind == "regulariser" and "weight" not in fields:
        raise PluginError(f"{where}: regulariser {name!r} needs a 'weight' field in its Config (inherit Regulariser.Config)")
    if all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING for f in fields.values()):
        try:
            cfg_cls()
        except Exception as err:  # the defaults must pass the Config's own checks
            raise PluginError(f"{where}: {cls.__name__}.Config() with its defaults fails: {type(err).__name__}: {err}") from err
    if cls.__call__ is _KINDS[kind].__call__:
        raise PluginError(f"{where}: {cls.__name__} must implement __call__(self, out) -> (loss, logs)")
    _check_call_signature(cls, where)
    for other_kind, table in _REGISTRY.items():
        if name in table and table[name] is not cls:
            raise PluginError(
                f"{where}: method name {name!r} is already registered as a {other_kind} by "
                f"{_ORIGIN[(other_kind, name)]}; choose another name"
            )
    _REGISTRY[kind][name] = cls
    _ORIGIN[(kind, name)] = where
    if _loading_from and where in _FILES:
        _FILES[where].append((kind, name))
    return cls


def ensure_builtins() -> None:
    importlib.import_module("methods.builtins")


def names(kind: str | None = None) -> list[str]:
    ensure_builtins()
    if kind is not None and kind not in _KINDS:
        raise KeyError(f"unknown method kind {kind!r}; valid kinds: {', '.join(_KINDS)}")
    kinds = [kind] if kind else list(_KINDS)
    return sorted(n for k in kinds for n in _REGISTRY[k])


def get(name: str, kind: str) -> type[_Configured]:
    ensure_builtins()
    if kind not in _KINDS:
        raise KeyError(f"unknown method kind {kind!r}; valid kinds: {', '.join(_KINDS)}")
    table = _REGISTRY[kind]
    if name not in table:
        other = next((k for k in _KINDS if k != kind and name in _REGISTRY[k]), None)
        hint = f" ({name!r} is a {other}, not a {kind})" if other else ""
        raise KeyError(f"unknown {kind} {name!r}{hint}; valid {kind}s: {', '.join(sorted(table))}")
    return table[name]


def origin(name: str, kind: str) -> str:
    """The file or entry point that registered a method."""
    get(name, kind)
    return _ORIGIN[(kind, name)]


def make_config(cls: type[_Configured], params: dict[str, Any]) -> Any:
    """``cls.Config(**params)`` with errors that list the valid and the missing parameters."""
    fields = dataclasses.fields(cls.Config)
    valid = [f.name for f in fields]
    where = source_of(cls)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise KeyError(
            f"{cls.kind} {cls.name!r} ({where}) has no parameter {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
        )
    missing = [f.name for f in fields if f.name not in params
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{cls.kind} {cls.name!r} ({where}) needs parameter {', '.join(map(repr, missing))} (it has no default)")
    try:
        return cls.Config(**params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{cls.kind} {cls.name!r}: {err}") from err


def build(name: str, kind: str, params: dict[str, Any] | None = None) -> _Configured:
    cls = get(name, kind)
    return cls(make_config(cls, params or {}))


def source_hash(name: str, kind: str) -> str:
    """SHA-256 (16 hex digits) of the file defining a method, recorded with each result."""
    cls = get(name, kind)
    where = _ORIGIN[(kind, name)]
    path = Path(where)
    if not path.is_file():
        try:
            path = Path(inspect.getsourcefile(cls) or "")
        except TypeError:
            return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else ""


def rebuild(kind: str, name: str, source: str, params: dict[str, Any]) -> _Configured:
    """Build a method in a process that may not have loaded its plugin yet (unpickling)."""
    ensure_builtins()
    if name not in _REGISTRY[kind]:
        if Path(source).is_file():
            load_plugin_file(source)
        elif source.startswith("entry point "):
            load_entry_points()
    if name not in _REGISTRY[kind]:
        raise PluginError(f"cannot rebuild {kind} {name!r}: it is not registered and {source} did not register it")
    return build(name, kind, params)


def _unregister(items: list[tuple[str, str]]) -> None:
    for kind, name in items:
        _REGISTRY[kind].pop(name, None)
        _ORIGIN.pop((kind, name), None)


def load_plugin_file(path: str | Path) -> list[str]:
    """Import a user's method file; whatever it decorates with :func:`register` is added.

    Returns the names it registered. Loading the same file again is a no-op. Any error
    (a syntax error, an import error, an invalid method, a file that registers nothing)
    is a :class:`PluginError` naming the file, and nothing from a failed file stays
    registered.
    """
    path = Path(path).resolve()
    key = str(path)
    if not path.is_file():
        raise PluginError(f"plugin file {path} does not exist")
    if path.suffix != ".py":
        raise PluginError(f"plugin file {path} must be a Python file ending in .py")
    ensure_builtins()
    if key in _FILES:
        return [n for _, n in _FILES[key]]
    mod_name = "gmgbench_plugin_" + hashlib.sha1(key.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin file {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # The module must be in sys.modules while it runs: dataclasses resolve the
    # annotations of a nested Config through it.
    sys.modules[mod_name] = module
    _FILES[key] = []
    _loading_from.append(key)
    try:
        spec.loader.exec_module(module)
        if not _FILES[key]:
            raise PluginError(
                f"{path}: registers no method; decorate an Objective or Regulariser subclass with "
                "@methods.registry.register (see docs/new-method.md)"
            )
    except BaseException as err:
        _unregister(_FILES.pop(key))
        sys.modules.pop(mod_name, None)
        if isinstance(err, PluginError):
            raise
        if isinstance(err, Exception):
            raise PluginError(f"{path}: importing the plugin failed: {type(err).__name__}: {err}") from err
        raise
    finally:
        _loading_from.pop()
    return [n for _, n in _FILES[key]]


def load_entry_points() -> list[str]:
    """Import every module named in the ``gmgbench.methods`` entry-point group, once.

    Returns the names registered by this call.
    """
    ensure_builtins()
    added: list[str] = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        label = f"entry point {ep.name} = {ep.value}"
        if label in _ENTRY_POINTS:
            continue
        before = {k: set(t) for k, t in _REGISTRY.items()}
        _FILES[label] = []
        _loading_from.append(label)
        try:
            ep.load()
        except BaseException as err:
            _unregister(_FILES.pop(label))
            if isinstance(err, PluginError):
                raise
            if isinstance(err, Exception):
                raise PluginError(f"{label}: {type(err).__name__}: {err}") from err
            raise
        finally:
            _loading_from.pop()
        _FILES.pop(label)
        _ENTRY_POINTS.add(label)
        added += sorted(n for k, t in _REGISTRY.items() for n in set(t) - before[k])
    return added


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Run a block with a private copy of the registry (for tests of plugins).

    Whatever the block registers or loads is forgotten on exit, plugin modules included.
    """
    ensure_builtins()
    saved = ({k: dict(t) for k, t in _REGISTRY.items()}, dict(_ORIGIN),
             {k: list(v) for k, v in _FILES.items()}, set(_ENTRY_POINTS))
    modules = set(sys.modules)
    try:
        yield
    finally:
        for k, t in saved[0].items():
            _REGISTRY[k].clear()
            _REGISTRY[k].update(t)
        _ORIGIN.clear()
        _ORIGIN.update(saved[1])
        _FILES.clear()
        _FILES.update(saved[2])
        _ENTRY_POINTS.clear()
        _ENTRY_POINTS.update(saved[3])
        for mod in set(sys.modules) - modules:
            if mod.startswith("gmgbench_plugin_"):
                del sys.modules[mod]
