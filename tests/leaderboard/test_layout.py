"""The leaderboard modules import one way: options ← aggregate/claims ← render ← release."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "harness" / "leaderboard"
NAME = "gmgbench.harness.leaderboard"


def _imports(path: Path) -> set[str]:
    """Leaderboard modules that ``path`` imports anywhere (module level or inside functions)."""
    mods = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == NAME:
                out |= {a.name for a in node.names if a.name in mods} or {"__init__"}
            elif node.module.startswith(NAME + "."):
                out.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[2] for a in node.names if a.name.startswith(NAME + ".")}
    return out - {path.stem}


def test_no_import_circle_between_leaderboard_modules():
    graph = {p.stem: _imports(p) for p in PKG.glob("*.py")}
    assert graph["options"] == set(), "options.py must stay importable alone"
    assert "aggregate" not in graph["claims"] and "claims" not in graph["aggregate"]

    def reach(start: str, seen: set[str]) -> set[str]:
        for nxt in graph.get(start, ()):
            if nxt not in seen:
                seen.add(nxt)
                reach(nxt, seen)
        return seen

    circles = sorted(m for m in graph if m in reach(m, set()))
    assert not circles, f"import circle through {circles}: {graph}"


def test_options_load_without_pandas():
    code = ("import sys; import gmgbench.harness.leaderboard.options as o; from gmgbench.harness.leaderboard import LeaderboardError; "
            "assert o.LeaderboardError is LeaderboardError; "
            "print(sorted(m for m in ('pandas', 'scipy', 'tabulate', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PKG.parents[1]).stdout
    assert out.strip() == "[]"
