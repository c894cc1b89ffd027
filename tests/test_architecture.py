"""docs/architecture.md matches the code, and the import rule holds.

- every module path the page names exists, and every module of harness/, methods/ and
  metrics/ is named there (by its own path; a package the page describes as a whole, by
  its folder, ``harness/<pkg>/``, when it does not name the package's ``__init__.py``);
- methods and metrics never import harness, not even inside a function;
- no import circle among the three packages (imports inside functions count: a lazy
  import hides a circle, it does not remove it).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "methods", "metrics")
PAGE = ROOT / "docs" / "architecture.md"


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (``from a import b`` is
    module ``a.b`` when that is a module, else ``a``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names)
    out = set()
    for mod in found:
        while mod and mod not in MODULES:
            mod = mod.rpartition(".")[0]
        if mod and mod != name:
            out.add(mod)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_methods_and_metrics_never_import_harness():
    bad = {m: sorted(i for i in deps if i.split(".")[0] == "harness")
           for m, deps in GRAPH.items() if m.split(".")[0] in ("methods", "metrics")}
    assert {m: d for m, d in bad.items() if d} == {}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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


def test_no_import_circles():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


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
    assert "never import `harness`" in text and "import circle" in text
