"""`gmgbench --help` and `gmgbench status` start without torch, JAX or scikit-learn.

The check runs the CLI in a fresh interpreter and reads ``sys.modules`` at exit, so any
module-level import that drags torch in again (a dataset, a method, the registry) fails
it. The start-up time itself is a side-by-side benchmark against a bare ``python -c pass``
(ratio and absolute times printed, never asserted; target: ≤ 0.5 s for ``--help``)::

    .venv/bin/python -m pytest tests/harness/test_cli_startup.py -m benchmark_side_by_side \
        --benchmark-enable -s -p no:cacheprovider
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from side_by_side import interleaved, ratios

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "jax", "jaxlib", "sklearn", "ott", "matplotlib")

# Runs the CLI like the console script does, then lists the heavy modules it loaded.
_PROBE = """
import json, sys
from gmgbench.harness import cli
try:
    cli.main(sys.argv[2:])
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(%r))
open(sys.argv[1], 'w').write(json.dumps(heavy))
""" % (HEAVY,)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _heavy_imports(tmp_path: Path, *args: str) -> list[str]:
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(out), *args], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert out.is_file(), proc.stderr
    return json.loads(out.read_text())


def test_help_imports_no_torch_or_jax(tmp_path):
    assert _heavy_imports(tmp_path, "--help") == []
    assert _heavy_imports(tmp_path, "run", "--help") == []


def test_status_imports_no_torch_or_jax(tmp_path):
    spec = REPO / "studies" / "demo.yaml"
    assert _heavy_imports(tmp_path, "status", str(spec), "--results", str(tmp_path / "store")) == []


def test_probe_sees_heavy_imports(tmp_path):
    """The probe can fail: `methods` (a command that needs the registry) does import torch."""
    assert "torch" in _heavy_imports(tmp_path, "methods")


@pytest.mark.benchmark_side_by_side
def test_cli_startup_against_bare_python(benchmark, tmp_path):
    reps = 7
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "gmgbench --help": [sys.executable, "-m", "gmgbench.harness.cli", "--help"],
        "gmgbench status demo": [sys.executable, "-m", "gmgbench.harness.cli", "status", str(REPO / "studies" / "demo.yaml"),
                                 "--results", str(tmp_path / "store")],
    }

    def measure(name: str) -> float:
        t0 = time.perf_counter()
        subprocess.run(commands[name], cwd=tmp_path, env=_env(), capture_output=True, check=True)
        return time.perf_counter() - t0

    times = interleaved(benchmark, measure, commands, rounds=reps)
    print(f"\nCLI start-up, median of {len(times['gmgbench --help'])} interleaved runs (target for --help: <= 0.5 s):")
    for name, (med, ratio) in ratios(times, "python -c pass").items():
        print(f"  {name:24s} {1000 * med:7.0f} ms  {ratio:5.1f}x bare python")
    assert len({len(ts) for ts in times.values()}) == 1  # once with benchmarks disabled (make test)
