"""The method registry: name -> objective or regulariser class.

One :class:`Registry` object, :data:`REGISTRY`, holds three sources of methods:

- **built-ins**, declared by ``module:Class`` path in :mod:`gmgbench.methods.builtins` and imported
  the first time one is asked for (so importing this module imports no method, and no
  method module imports the registry);
- **plugin files** named in a study spec (``plugins: [my_method.py]``) or on the command
  line; whatever such a file decorates with :func:`register` is added;
- **entry points** in the group ``gmgbench.methods`` of installed packages: a module
  (importing it registers, as a plugin file does) or a ``module:Class`` (as a built-in).

Every error about a method names the file (or entry point) that defines it; see
``docs/new-method.md``. The module-level functions (:func:`register`, :func:`get`, ...)
are :data:`REGISTRY`'s methods.
"""
from __future__ import annotations

import contextlib
import copy
import copyreg
import dataclasses
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from gmgbench.methods.base import Objective, Regulariser, _Configured
from gmgbench.methods.builtins import BUILTINS

__all__ = [
    "PluginError", "Registry", "REGISTRY", "ENTRY_POINT_GROUP",
    "register", "get", "names", "build", "make_config", "origin", "source_of", "source_hash", "rebuild", "unknown",
    "load_plugin_file", "load_entry_points", "broken_packages", "isolated",
]

ENTRY_POINT_GROUP = "gmgbench.methods"
log = logging.getLogger(__name__)
KINDS = {"objective": Objective, "regulariser": Regulariser}


def _a(kind: str) -> str:
    """``kind`` with its article, for messages: "an objective", "a regulariser"."""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"



def load_entry_point_group(group: str, seen: set[str], load_one: Callable[[Any, str], list[str]],
                           own: type[BaseException], what: str, broken: dict[str, str], warn: bool) -> list[str]:
    """Load each entry point of ``group`` once per process (``seen``: the labels tried; a
    failed import is not retried) with ``load_one(ep, label)``, which returns the names it
    registered and keeps none when it fails. A failure is one warning line naming the package
    (kept in ``broken``; ``warn=False`` only records it), so studies that use none of its
    ``what`` are unaffected. Methods' and metrics' registries both load their groups so."""
    added: list[str] = []
    for ep in importlib.metadata.entry_points(group=group):
        label = f"entry point {ep.name} = {ep.value}"
        if label in seen:
            continue
        seen.add(label)
        try:
            added += load_one(ep, label)
        except Exception as err:  # noqa: BLE001 - any error of a third-party import
            detail = str(err) if isinstance(err, own) else f"{label}: {type(err).__name__}: {err}"
            dist = getattr(ep, "dist", None)
            package = dist.name if dist is not None else ep.value.partition(":")[0].partition(".")[0]
            broken[label] = (f"installed package {package!r} ({detail.splitlines()[0] if detail else label}) is "
                             f"not loaded; studies that use none of its {what} are unaffected")
            if warn:
                log.warning("%s", broken[label])
    return added

class PluginError(ValueError):
    """A method definition or plugin is invalid; the message names the file."""


def _source_file(cls: type) -> str:
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


def _check_method(cls: Any, where: str) -> str:
    """What a researcher most often gets wrong, named with the file; returns the kind."""
    kind = next((k for k, base in KINDS.items() if isinstance(cls, type) and issubclass(cls, base)), None)
    if kind is None:
        raise PluginError(f"{where}: {getattr(cls, '__name__', cls)!r} must subclass gmgbench.methods.base.Objective or gmgbench.methods.base.Regulariser")
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
    if cls.__call__ is KINDS[kind].__call__:
        raise PluginError(f"{where}: {cls.__name__} must implement __call__(self, out) -> (loss, logs)")
    _check_call_signature(cls, where)
    return kind


def _rebuild(kind: str, name: str, source: str, params: dict[str, Any]) -> _Configured:
    return REGISTRY.rebuild(kind, name, source, params)


def _reduce(term: _Configured):
    # submitit and worker pools pickle into fresh processes. A plugin's class lives in a
    # module such a process has not imported, so a method travels as (kind, name, source
    # file, parameters) and is rebuilt through the registry on the other side.
    params = {f.name: getattr(term.cfg, f.name) for f in dataclasses.fields(term.cfg)}
    return _rebuild, (term.kind, term.name, REGISTRY.source_of(type(term)), params)


class Registry:
    """Methods by kind and name, each with the file (or entry point) it came from."""

    def __init__(self, builtins: Mapping[str, Mapping[str, str]]):
        self._declared = {kind: dict(builtins.get(kind, {})) for kind in KINDS}  # name -> "module:Class"
        self._classes: dict[str, dict[str, type[_Configured]]] = {kind: {} for kind in KINDS}
        self._origin: dict[tuple[str, str], str] = {}
        self._files: dict[str, list[tuple[str, str]]] = {}  # plugin file or entry point -> what it registered
        self._entry_points: set[str] = set()
        self._broken: dict[str, str] = {}  # entry point label -> the line that says why it is not loaded
        self._loading_from: list[str] = []

    # -- adding ------------------------------------------------------------------------------
    def register(self, cls: type[_Configured]) -> type[_Configured]:
        """Class decorator for plugins: add an :class:`Objective` or :class:`Regulariser` subclass.

        Checks a missing ``name``, a ``Config`` that is not a frozen dataclass or whose
        defaults its own checks reject, a regulariser without a ``weight``, a missing or
        mis-declared ``__call__``, and a name already taken (built-in names cannot be
        overridden), naming the file in the error.
        """
        where = self._loading_from[-1] if self._loading_from else _source_file(cls)
        kind = _check_method(cls, where)
        name = cls.name
        for other_kind in KINDS:
            if self._is_declared_as(cls, other_kind, name):
                break  # a built-in module that still decorates its class: the declared one
            if name in self._declared[other_kind] and name not in self._classes[other_kind]:
                self._load_builtin(other_kind, name)
            taken = self._classes[other_kind].get(name)
            if taken is not None and taken is not cls:
                raise PluginError(f"{where}: method name {name!r} is already registered as {_a(other_kind)} by "
                                  f"{self._origin[(other_kind, name)]}; choose another name")
        self._add(kind, name, cls, where)
        if self._loading_from and where in self._files:
            self._files[where].append((kind, name))
        return cls

    def _is_declared_as(self, cls: type, kind: str, name: str) -> bool:
        return self._declared[kind].get(name) == f"{cls.__module__}:{cls.__qualname__}"

    def _add(self, kind: str, name: str, cls: type[_Configured], where: str) -> None:
        self._classes[kind][name] = cls
        self._origin[(kind, name)] = where
        if "__reduce__" not in vars(cls):  # a class that pickles itself keeps its own way
            copyreg.pickle(cls, _reduce)

    def _load_builtin(self, kind: str, name: str) -> type[_Configured]:
        path = self._declared[kind][name]
        module, _, attr = path.partition(":")
        where = f"methods/builtins.py: {kind} {name!r} = {path!r}"
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise PluginError(f"{where}: {type(err).__name__}: {err}") from err
        where = _source_file(cls)
        if _check_method(cls, where) != kind or cls.name != name:
            raise PluginError(f"{where}: {cls.__name__} is declared as {kind} {name!r} in methods/builtins.py "
                              f"but is a {_check_method(cls, where)} named {cls.name!r}")
        self._add(kind, name, cls, where)
        return cls

    # -- lookups -----------------------------------------------------------------------------
    def _kind(self, kind: str) -> str:
        if kind not in KINDS:
            raise KeyError(f"unknown method kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        return kind

    def _known(self, kind: str) -> set[str]:
        return set(self._declared[kind]) | set(self._classes[kind])

    def names(self, kind: str | None = None) -> list[str]:
        kinds = [self._kind(kind)] if kind is not None else list(KINDS)
        return sorted(n for k in kinds for n in self._known(k))

    def get(self, name: str, kind: str) -> type[_Configured]:
        self._kind(kind)
        if name in self._classes[kind]:
            return self._classes[kind][name]
        if name in self._declared[kind]:
            return self._load_builtin(kind, name)
        raise KeyError(self.unknown(name, kind))

    def unknown(self, name: str, kind: str, suggestion: str = "") -> str:
        """Why :meth:`get` finds no ``kind`` called ``name``: the valid names and any plugin that
        failed to load. ``suggestion`` (a caller's " (did you mean ...?)") follows the name."""
        other = next((k for k in KINDS if k != kind and name in self._known(k)), None)
        hint = f" ({name!r} is {_a(other)}, not {_a(kind)})" if other else ""
        broken = "".join(f"; {line}" for line in self._broken.values())
        return f"unknown {kind} {name!r}{suggestion}{hint}; valid {kind}s: {', '.join(self.names(kind))}{broken}"

    def origin(self, name: str, kind: str) -> str:
        """The file or entry point that registered a method."""
        self.get(name, kind)
        return self._origin[(kind, name)]

    def source_of(self, cls: type) -> str:
        """The file (or entry point) that registered ``cls``; its source file if unregistered."""
        for (kind, name), where in self._origin.items():
            if self._classes[kind].get(name) is cls:
                return where
        return _source_file(cls)

    def source_hash(self, name: str, kind: str) -> str:
        """SHA-256 (16 hex digits) of the file defining a method, recorded with each result."""
        cls = self.get(name, kind)
        path = Path(self._origin[(kind, name)])
        if not path.is_file():
            try:
                path = Path(inspect.getsourcefile(cls) or "")
            except TypeError:
                return ""
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else ""

    # -- configs and instances ---------------------------------------------------------------
    def make_config(self, cls: type[_Configured], params: dict[str, Any]) -> Any:
        """``cls.Config(**params)`` with errors that list the valid and the missing parameters."""
        fields = dataclasses.fields(cls.Config)
        valid = [f.name for f in fields]
        where = self.source_of(cls)
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

    def build(self, name: str, kind: str, params: dict[str, Any] | None = None) -> _Configured:
        cls = self.get(name, kind)
        return cls(self.make_config(cls, params or {}))

    def rebuild(self, kind: str, name: str, source: str, params: dict[str, Any]) -> _Configured:
        """Build a method in a process that may not have loaded its plugin yet (unpickling)."""
        if name not in self._known(kind):
            if Path(source).is_file():
                self.load_plugin_file(source)
            elif source.startswith("entry point "):
                self.load_entry_points()
        if name not in self._known(kind):
            raise PluginError(f"cannot rebuild {kind} {name!r}: it is not registered and {source} did not register it")
        return self.build(name, kind, params)

    # -- plugins -----------------------------------------------------------------------------
    def _unregister(self, items: list[tuple[str, str]]) -> None:
        for kind, name in items:
            self._classes[kind].pop(name, None)
            self._origin.pop((kind, name), None)

    @contextlib.contextmanager
    def _loading(self, label: str) -> Iterator[None]:
        """Whatever registers inside the block is ``label``'s; on any error all of it is dropped."""
        self._files[label] = []
        self._loading_from.append(label)
        try:
            yield
        except BaseException:
            self._unregister(self._files.pop(label))
            raise
        finally:
            self._loading_from.pop()

    def load_plugin_file(self, path: str | Path, registered_elsewhere: Callable[[], bool] | None = None) -> list[str]:
        """Import a user's method file; whatever it decorates with :func:`register` is added.

        Returns the names it registered. Loading the same file again is a no-op. Any error
        (a syntax error, an import error, an invalid method, a file that registers nothing)
        is a :class:`PluginError` naming the file, and nothing from a failed file stays
        registered. ``registered_elsewhere()``, asked after the import, is True when the
        file registered something of another kind (a metric: the harness loads both from
        one file), so a file without a method is not an error.
        """
        path = Path(path).resolve()
        key = str(path)
        if not path.is_file():
            raise PluginError(f"plugin file {path} does not exist")
        if path.suffix != ".py":
            raise PluginError(f"plugin file {path} must be a Python file ending in .py")
        if key in self._files:
            return [n for _, n in self._files[key]]
        mod_name = "gmgbench_plugin_" + hashlib.sha1(key.encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"plugin file {path} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        # The module must be in sys.modules while it runs: dataclasses resolve the
        # annotations of a nested Config through it.
        sys.modules[mod_name] = module
        try:
            with self._loading(key):
                spec.loader.exec_module(module)
                if not self._files[key] and not (registered_elsewhere and registered_elsewhere()):
                    also = (", or a metric with gmgbench.metrics.register (docs/new-metric.md)"
                            if registered_elsewhere else "")
                    raise PluginError(f"{path}: registers no method; decorate an Objective or Regulariser subclass "
                                      f"with @gmgbench.methods.registry.register (see docs/new-method.md){also}")
        except BaseException as err:
            sys.modules.pop(mod_name, None)
            if isinstance(err, Exception) and not isinstance(err, PluginError):
                raise PluginError(f"{path}: importing the plugin failed: {type(err).__name__}: {err}") from err
            raise
        return [n for _, n in self._files[key]]

    def load_entry_points(self, warn: bool = True) -> list[str]:
        """Load every entry point of the ``gmgbench.methods`` group, once: a module (importing
        it registers) or a ``module:Class`` (added like a built-in). Returns the names added.

        One installed package must not break studies that never use it: a package that fails
        to import, or registers an invalid method or a taken name, is logged as one warning
        naming the package (:meth:`broken_packages`), keeps nothing registered, and is named
        again in the error of any lookup of a method this process does not know. ``warn=False``
        only records it (a worker process: its parent said it when the study loaded).
        """
        def load_one(ep: Any, label: str) -> list[str]:
            with self._loading(label):
                obj = ep.load()
                if isinstance(obj, type) and obj.__dict__.get("name") and not self._files[label]:
                    self.register(obj)
            return sorted(n for _, n in self._files.pop(label))

        return load_entry_point_group(ENTRY_POINT_GROUP, self._entry_points, load_one, PluginError, "methods",
                                      self._broken, warn)

    def broken_packages(self) -> list[str]:
        """One line per installed plugin package that failed to load in this process."""
        return list(self._broken.values())

    @contextlib.contextmanager
    def isolated(self) -> Iterator[None]:
        """Run a block with a private copy of the registry (for tests of plugins).

        Whatever the block registers or loads is forgotten on exit, plugin modules included.
        """
        saved = copy.deepcopy({k: v for k, v in vars(self).items() if k != "_classes"})
        classes = {kind: dict(table) for kind, table in self._classes.items()}  # classes themselves are not copied
        modules = set(sys.modules)
        try:
            yield
        finally:
            vars(self).update(saved)
            self._classes = classes
            for mod in set(sys.modules) - modules:
                if mod.startswith("gmgbench_plugin_"):
                    del sys.modules[mod]


REGISTRY = Registry(BUILTINS)

# The module-level API (``registry.get(...)``, ``@gmgbench.methods.registry.register``) is REGISTRY's
# methods of the same names, looked up on use: one list of them, __all__, not one line each.
_API = frozenset(__all__) - {"PluginError", "Registry", "REGISTRY", "ENTRY_POINT_GROUP"}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(REGISTRY, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
