"""Shared set-up of the dataset tests: helper module on sys.path, single-threaded torch."""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import torch  # noqa: E402

torch.set_num_threads(1)


def pytest_terminal_summary(terminalreporter):
    import bench_summary

    for line in bench_summary.lines():
        terminalreporter.write_line(line)
