"""Shared set-up of the dataset tests (helper modules import by name: see pytest's pythonpath)."""
from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    import bench_summary

    for line in bench_summary.lines():
        terminalreporter.write_line(line)
