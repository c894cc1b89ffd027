"""README and docs stand on their own: no path outside the repository, links that resolve,
and the README's first lines are its two commands, each doing its own set-up."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Steering material beside the checkout, which a user of the repository does not have.
OUTSIDE = re.compile(r"\.\./shared|(?<![\w/])shared/(paper|gw|dlib-compat|style)\b")
TEXT = ["README.md", "Makefile", "pyproject.toml", "CITATION.cff", "docs/*.md", "docs/examples/*.py",
        "studies/*.yaml", "slurm/**/*", "harness/**/*.py", "methods/**/*.py", "metrics/**/*.py", "tests/**/*.py",
        ".ci/*"]


def _files():
    for pattern in TEXT:
        for path in sorted(REPO.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                yield path


def test_nothing_points_outside_the_repository():
    hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()}" for p in _files()
            for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if OUTSIDE.search(line)]
    assert hits == []


@pytest.mark.parametrize("doc", ["README.md", *sorted(str(p.relative_to(REPO)) for p in REPO.glob("docs/*.md"))])
def test_relative_links_resolve_inside_the_repository(doc):
    path = REPO / doc
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a URL
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(REPO), f"{doc}: {target} leaves the repository"
        assert resolved.exists(), f"{doc}: {target} does not exist"


def test_readme_starts_with_its_two_self_contained_commands():
    lines = (REPO / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1: lines.index("```")]
    assert lines.index("```bash") <= 3  # right under the title
    assert [ln.split("#")[0].strip() for ln in block] == ["make demo", "make test"]
    makefile = (REPO / "Makefile").read_text()
    for target in ("demo", "test", "test-fast"):  # each sets up .venv itself (the stamp)
        assert re.search(rf"^{target}: \$\(STAMP\)", makefile, re.M), target
    extras = re.search(r"pip install .* -e \"\.\[([\w,]+)\]\"", makefile)
    assert extras and {"test", "tensorboard"} <= set(extras.group(1).split(","))
