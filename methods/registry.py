"""The method registry: name -> objective or regulariser class.

Built-ins register themselves with :func:`register` when :mod:`methods.builtins` is
imported. A user's method comes from a drop-in Python file named in the study spec
(``plugins: [my_method.py]``) or from an installed package's entry point in the group
``gmgbench.methods`` (the entry point names a module; importing it registers).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from methods.base import Objective, Regulariser, _Configured

__all__ = [
    "PluginError",
    "register",
    "get",
    "names",
    "build",
    "load_plugin_file",
    "load_entry_points",
    "ensure_builtins",
]

ENTRY_POINT_GROUP = "gmgbench.methods"
_KINDS = {"objective": Objective, "regulariser": Regulariser}
_REGISTRY: dict[str, dict[str, type[_Configured]]] = {k: {} for k in _KINDS}
_ORIGIN: dict[tuple[str, str], str] = {}
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


def register(cls: type[_Configured]) -> type[_Configured]:
    """Class decorator: add an :class:`Objective` or :class:`Regulariser` subclass.

    Checks what a researcher most often gets wrong, and names the file in the error:
    a missing ``name``, a ``Config`` that is not a dataclass, a regulariser without a
    ``weight``, a missing ``__call__``, and a name already taken.
    """
    where = _where(cls)
    kind = next((k for k, base in _KINDS.items() if isinstance(cls, type) and issubclass(cls, base)), None)
    if kind is None:
        raise PluginError(f"{where}: {getattr(cls, '__name__', cls)!r} must subclass methods.base.Objective or methods.base.Regulariser")
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name.isidentifier():
        raise PluginError(f"{where}: {cls.__name__}.name must be a Python identifier, got {name!r}")
    if not dataclasses.is_dataclass(cls.Config):
        raise PluginError(f"{where}: {cls.__name__}.Config must be a @dataclass")
    if kind == "regulariser" and "weight" not in {f.name for f in dataclasses.fields(cls.Config)}:
        raise PluginError(f"{where}: regulariser {name!r} needs a 'weight' field in its Config (inherit Regulariser.Config)")
    if cls.__call__ is _KINDS[kind].__call__:
        raise PluginError(f"{where}: {cls.__name__} must implement __call__(self, out) -> (loss, logs)")
    for other_kind, table in _REGISTRY.items():
        if name in table and table[name] is not cls:
            raise PluginError(
                f"{where}: method name {name!r} is already registered as a {other_kind} by "
                f"{_ORIGIN[(other_kind, name)]}; choose another name"
            )
    _REGISTRY[kind][name] = cls
    _ORIGIN[(kind, name)] = where
    return cls


def ensure_builtins() -> None:
    importlib.import_module("methods.builtins")


def names(kind: str | None = None) -> list[str]:
    ensure_builtins()
    kinds = [kind] if kind else list(_KINDS)
    return sorted(n for k in kinds for n in _REGISTRY[k])


def get(name: str, kind: str) -> type[_Configured]:
    ensure_builtins()
    table = _REGISTRY[kind]
    if name not in table:
        other = next((k for k in _KINDS if k != kind and name in _REGISTRY[k]), None)
        hint = f" ({name!r} is a {other}, not a {kind})" if other else ""
        raise KeyError(f"unknown {kind} {name!r}{hint}; valid {kind}s: {', '.join(sorted(table))}")
    return table[name]


def origin(name: str, kind: str) -> str:
    get(name, kind)
    return _ORIGIN[(kind, name)]


def make_config(cls: type[_Configured], params: dict[str, Any]) -> Any:
    """``cls.Config(**params)`` with an error that lists the valid parameters."""
    valid = [f.name for f in dataclasses.fields(cls.Config)]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise KeyError(f"{cls.kind} {cls.name!r} has no parameter {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}")
    try:
        return cls.Config(**params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{cls.kind} {cls.name!r}: {err}") from err


def build(name: str, kind: str, params: dict[str, Any] | None = None) -> _Configured:
    cls = get(name, kind)
    return cls(make_config(cls, params or {}))


def source_hash(name: str, kind: str) -> str:
    """SHA-256 of the file defining a method, recorded with each result."""
    path = Path(inspect.getsourcefile(get(name, kind)) or "")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else ""


def load_plugin_file(path: str | Path) -> None:
    """Import a user's method file; whatever it decorates with :func:`register` is added."""
    path = Path(path).resolve()
    if not path.is_file():
        raise PluginError(f"plugin file {path} does not exist")
    mod_name = "gmgbench_plugin_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if mod_name in sys.modules:
        return
    ensure_builtins()
    spec = importlib.util.spec_from_file_location(mod_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    _loading_from.append(str(path))
    try:
        spec.loader.exec_module(module)
    except PluginError:
        del sys.modules[mod_name]
        raise
    except Exception as err:
        del sys.modules[mod_name]
        raise PluginError(f"{path}: importing the plugin failed: {type(err).__name__}: {err}") from err
    finally:
        _loading_from.pop()


def load_entry_points() -> None:
    ensure_builtins()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        _loading_from.append(f"entry point {ep.name} = {ep.value}")
        try:
            ep.load()
        except PluginError:
            raise
        except Exception as err:
            raise PluginError(f"entry point {ep.name} = {ep.value}: {type(err).__name__}: {err}") from err
        finally:
            _loading_from.pop()
