"""A throwaway installed distribution for the entry-point tests: a package and its dist-info."""
from __future__ import annotations

import textwrap
from pathlib import Path

from gmgbench.methods import registry


def install_distribution(site: Path, module: str, body: str, entry: str, group: str = registry.ENTRY_POINT_GROUP,
                         attr: str | None = None) -> None:
    """``site/module/__init__.py`` holding ``body``, and a dist-info whose entry point ``entry``
    in ``group`` (gmgbench's methods group unless told) names that module, or its ``attr``
    (what ``pip install`` of a plugin leaves)."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(body))
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    target = f"{module}:{attr}" if attr else module
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry} = {target}\n")
