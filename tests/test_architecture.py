"""docs/architecture.md matches the code, and the import rules hold.

- every module path the page names exists, and every module of harness/, methods/ and
  metrics/ is named there (by its own path; a package the page describes as a whole, by
  its folder, ``harness/<pkg>/``, when it does not name the package's ``__init__.py``);
- methods and metrics never import harness, not even inside a function;
- no import circle, between modules or between folders (imports inside functions count:
  a lazy import hides a circle, it does not remove it), and no import inside a function
  closes one (each such import is named with its file and line).

Folders. At depth 1 each package (harness, methods, metrics) is one node. At depth 2 each
sub-folder (``harness/slurm/``, ``harness/leaderboard/``, ``methods/ot/`` ...) is one node
and each module that lives directly in a package (``harness/spec.py``, ``methods/base.py``)
is a node of its own, beside the sub-folders: the rooms ``farm-studio look`` draws, so an
arrow that runs back up there is a loop here. A sub-folder's module importing a module of
its parent (``harness/slurm/job.py`` -> ``harness/results.py``) is an arrow between two such
nodes like any other; it is a loop only if ``results.py`` reaches back into ``harness/slurm/``.
(Counting all of ``harness/*.py`` as one node would make every sub-folder that uses the
store and is used by the CLI a loop, which would say nothing.) Each deeper level of folders,
and the modules themselves, are checked the same way.

Edges are the ``import`` statements the code writes (``from a import b`` is module ``a.b``
when that is a module, else ``a``); the parent packages Python runs on the way, and what
``importlib.import_module`` loads by name (plugins, lazy exports), are not edges.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "methods", "metrics")
PREFIX = "gmgbench"  # the namespace the three packages install under (pyproject.toml)
PAGE = ROOT / "docs" / "architecture.md"


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([PREFIX, *parts])] = path
    return out


MODULES = _modules()


def _in_functions(tree: ast.AST) -> set[int]:
    """The ids of the import nodes that sit inside a function (or lambda) body."""
    inside = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return inside


def _imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """``(project module, line, inside a function)`` for each import in ``name``'s file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    lazy = _in_functions(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for mod in found:
            while mod and mod not in MODULES:
                mod = mod.rpartition(".")[0]
            if mod and mod != name:
                out.append((mod, node.lineno, id(node) in lazy))
    return out


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}
GRAPH = {name: {m for m, _, _ in found} for name, found in IMPORTS.items()}


def _node(name: str, depth: int, packages: set[str]) -> str:
    """``name``'s node at folder depth ``depth``: its folder cut to ``depth`` folders, or the
    module itself when it lives in a shallower folder (``PREFIX`` is no folder)."""
    parts = name.split(".")[1:]
    folder = parts if name in packages else parts[:-1]
    return ".".join([PREFIX, *(folder[:depth] if len(folder) >= depth else parts)])


def _folders(graph: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    """``graph`` with each module replaced by its node at ``depth`` (edges inside a node dropped)."""
    packages = {n for n, p in MODULES.items() if p.name == "__init__.py"} | _synthetic_packages(graph)
    out: dict[str, set[str]] = {}
    for src, deps in graph.items():
        a = _node(src, depth, packages)
        out.setdefault(a, set())
        for dep in deps:
            b = _node(dep, depth, packages)
            out.setdefault(b, set())
            if a != b:
                out[a].add(b)
    return out


def _synthetic_packages(graph: dict[str, set[str]]) -> set[str]:
    # A graph of made-up names (the self-tests): a name that is a prefix of another is a package.
    names = set(graph) | {d for deps in graph.values() for d in deps}
    return {n for n in names if n not in MODULES and any(m.startswith(n + ".") for m in names)}


DEPTHS = range(1, max(len(p.relative_to(ROOT).parts) for p in MODULES.values()))


def _levels(graph: dict[str, set[str]]) -> list[tuple[str, int | None, dict[str, set[str]]]]:
    """``(label, depth, graph)`` at every folder depth, and between modules (depth None)."""
    return [*((f"folders, depth {d}", d, _folders(graph, d)) for d in DEPTHS), ("modules", None, graph)]


def test_methods_and_metrics_never_import_harness():
    assert any(GRAPH.values()), "no project import was read: the module names do not match the code's"
    bad = {m: sorted(i for i in deps if i.split(".")[1] == "harness")
           for m, deps in GRAPH.items() if m.split(".")[1] in ("methods", "metrics")}
    assert {m: d for m, d in bad.items() if d} == {}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A shortest path ``start`` ... ``goal`` (breadth first), or None."""
    seen, frontier = {start: [start]}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w not in seen:
                    seen[w] = seen[v] + [w]
                    nxt.append(w)
        if goal in seen:
            return seen[goal]
        frontier = nxt
    return None


def _hidden_loops(imports: dict[str, list[tuple[str, int, bool]]], where=lambda name, line: f"{name}:{line}"
                  ) -> list[str]:
    """Each import inside a function whose arrow, at some level, closes a loop: the way back."""
    graph = {name: {m for m, _, _ in found} for name, found in imports.items()}
    levels = _levels(graph)
    packages = {n for n, p in MODULES.items() if p.name == "__init__.py"} | _synthetic_packages(graph)
    out = []
    for name, found in sorted(imports.items()):
        for dep, line, lazy in sorted(set(found)):
            if not lazy:
                continue
            for level, depth, g in levels:
                a, b = (name, dep) if depth is None else (_node(name, depth, packages), _node(dep, depth, packages))
                back = _path(g, b, a) if a != b else None
                if back:
                    out.append(f"{where(name, line)}: imports {dep} inside a function; {level}: "
                               f"{' -> '.join([a, *back])}")
                    break
    return out


def _short(name: str) -> str:
    return name.removeprefix(PREFIX + ".").replace(".", "/")


def _loops_report() -> dict[str, list[str]]:
    """Per level, each loop: its nodes, and every import that runs between two of them."""
    packages = {n for n, p in MODULES.items() if p.name == "__init__.py"}
    out = {}
    for level, depth, g in _levels(GRAPH):
        at = (lambda n: n) if depth is None else (lambda n, d=depth: _node(n, d, packages))
        for loop in _cycles(g):
            arrows = sorted(f"{MODULES[name].relative_to(ROOT)}:{line} -> {_short(dep)}"
                            for name, found in IMPORTS.items() for dep, line, _ in set(found)
                            if at(name) in loop and at(dep) in loop and at(name) != at(dep))
            out.setdefault(level, []).append(f"loop {' '.join(map(_short, loop))}: {'; '.join(arrows)}")
    return out


def test_no_import_circles_between_modules():
    assert _cycles(GRAPH) == []


def test_no_loops_between_folders():
    """No folder (at any depth, beside its parent's own modules) imports one that imports it back."""
    report = _loops_report()
    assert report == {}, "loops between folders:\n" + "\n".join(f"{lv}: {loop}" for lv, loops in report.items()
                                                                 for loop in loops)


def test_no_import_inside_a_function_hides_a_loop():
    def where(name: str, line: int) -> str:
        return f"{MODULES[name].relative_to(ROOT)}:{line}"

    hidden = _hidden_loops(IMPORTS, where)
    assert hidden == [], "imports inside functions that close a loop:\n" + "\n".join(h.replace(PREFIX + ".", "")
                                                                                       for h in hidden)


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set(), "c": {"a"}}) == []


def test_a_loop_between_folders_is_found_though_no_module_circles():
    # p/x -> q/y -> p/z: no module circle, but folder p imports folder q, which imports p back.
    graph = {"gmgbench.p.x": {"gmgbench.q.y"}, "gmgbench.q.y": {"gmgbench.p.z"}, "gmgbench.p.z": set(),
             "gmgbench.p": set(), "gmgbench.q": set()}
    assert _cycles(graph) == []
    assert _cycles(_folders(graph, 1)) == [["gmgbench.p", "gmgbench.q"]]
    # One folder deeper: r/s.py is a node beside r/t/; r/t/u -> r/s -> r/t/v is a loop there.
    graph = {"gmgbench.r.t.u": {"gmgbench.r.s"}, "gmgbench.r.s": {"gmgbench.r.t.v"}, "gmgbench.r.t.v": set(),
             "gmgbench.r": set(), "gmgbench.r.t": set()}
    assert _cycles(_folders(graph, 1)) == []
    assert _cycles(_folders(graph, 2)) == [["gmgbench.r.s", "gmgbench.r.t"]]
    # ... and a sub-folder that only uses its parent's modules is no loop.
    graph = {"gmgbench.r.t.u": {"gmgbench.r.s"}, "gmgbench.r.s": set(), "gmgbench.r.cli": {"gmgbench.r.t.u"},
             "gmgbench.r": set(), "gmgbench.r.t": set()}
    assert all(_cycles(g) == [] for _, _, g in _levels(graph))


def test_an_import_inside_a_function_that_closes_a_loop_is_named():
    imports = {"gmgbench.p.x": [("gmgbench.q.y", 3, False)], "gmgbench.q.y": [("gmgbench.p.z", 7, True)],
               "gmgbench.p.z": [], "gmgbench.p": [], "gmgbench.q": []}
    assert _hidden_loops(imports) == ["gmgbench.q.y:7: imports gmgbench.p.z inside a function; folders, depth 1: "
                                      "gmgbench.q -> gmgbench.p -> gmgbench.q"]
    imports["gmgbench.p.x"] = []  # no way back: a lazy import that closes nothing is fine
    assert _hidden_loops(imports) == []


def _named() -> set[str]:
    return set(re.findall(r"`((?:harness|methods|metrics)/[\w/]*?(?:\.py|/))`", PAGE.read_text()))


def test_every_module_the_page_names_exists():
    missing = sorted(p for p in _named() if not (ROOT / p).exists())
    assert missing == [], f"docs/architecture.md names what does not exist: {missing}"


def test_the_page_names_every_module():
    named = _named()
    unnamed = []
    for path in MODULES.values():
        rel = path.relative_to(ROOT).as_posix()
        folder = rel.rsplit("/", 1)[0] + "/"
        as_a_whole = folder in named and f"{folder}__init__.py" not in named
        if rel not in named and not as_a_whole:
            unnamed.append(rel)
    assert unnamed == [], f"docs/architecture.md does not name: {unnamed}"


def test_the_page_states_the_import_rule():
    text = PAGE.read_text()
    assert "never import `harness`" in text and "import circle" in text and "loop between folders" in text
