"""What several subcommands share: the study arguments, loading a study and its store, callbacks,
the preview rule, printing a board, checking a folder is writable."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gmgbench.harness.errors import UserError


def add_spec_edits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value before validation, e.g. train.steps=100 or methods.0.params.beta=[1,4] "
                        "(repeatable; run ids change exactly as editing the spec would)")
    p.add_argument("--only", nargs="+", action="extend", default=[], metavar="KEY=V1,V2",
                   help="keep a subset of the study: dataset=..., method=<label>, seed=... (comma-separated)")


def add_run_output(p: argparse.ArgumentParser) -> None:
    add_callback_args(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display (the summary only)")


def add_callback_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tensorboard", action="store_true",
                   help="log every curve, the metrics and the health record to <store>/work/<run>/tensorboard/ "
                        "(needs: pip install 'gmgbench[tensorboard]')")
    p.add_argument("--callback", action="append", default=[], metavar="NAME",
                   help="add a run callback: an entry point of gmgbench.callbacks, or module:attr (repeatable)")


def add_study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="study spec (YAML)")
    p.add_argument("--results", type=Path, default=None,
                   help="results store (default: <project>/results/<study name>)")
    add_spec_edits(p)


def load_study(args, check_methods: bool = True):
    from gmgbench.harness.executors import store_for
    from gmgbench.harness.spec import load_spec

    spec = load_spec(args.study, check_methods=check_methods, sets=getattr(args, "set", ()),
                     only=getattr(args, "only", ()))
    return spec, store_for(spec.name, args.results)


def callbacks_of(spec, args) -> tuple:
    """The spec's callbacks plus those of --tensorboard / --callback (each once)."""
    from gmgbench.harness.callbacks import resolve

    extra = (["tensorboard"] if getattr(args, "tensorboard", False) else []) + list(getattr(args, "callback", []) or [])
    names = {name for name, _ in spec.callbacks}
    for name in extra:
        check_callback_name(name)
        resolve(name)  # an unknown name fails here, before anything trains
    if "tensorboard" in {*names, *extra}:
        import importlib.util

        from gmgbench.harness.callbacks import CallbackError

        if importlib.util.find_spec("tensorboard") is None:
            raise CallbackError("TensorBoard logging needs the tensorboard package: pip install 'gmgbench[tensorboard]'")
    return tuple(spec.callbacks) + tuple((n, {}) for n in dict.fromkeys(extra) if n not in names)


def check_callback_name(name: str) -> None:
    """``module:attr`` with a module name ``import`` takes (``:attr``, ``..x:y`` are not)."""
    import re

    from gmgbench.harness.callbacks import CallbackError

    dotted = r"[^\W\d]\w*(\.[^\W\d]\w*)*"
    module, colon, attr = name.partition(":")
    if colon and not (re.fullmatch(dotted, module) and re.fullmatch(dotted, attr)):
        raise CallbackError(f"--callback {name!r}: expected module:attr, an importable module and a name in it "
                            "(e.g. mypkg.tracking:make_tracker), or an entry point's name")


def preview_reason(args) -> str | None:
    """Why a board built from this command line is not the study's working board (None: it may be).

    A run narrowed by --only/--set sees another study: its board is a labelled preview and
    never replaces latest.md; so is one from another results store than latest.md's, which
    ``leaderboard.write_latest`` decides (docs/leaderboards.md)."""
    why = [f"--only {' '.join(args.only)}"] if getattr(args, "only", None) else []
    why += [f"--set {item}" for item in getattr(args, "set", None) or ()]
    return "; ".join(f"`{w}`" for w in why) or None


def print_leaderboard(spec, store, **kwargs) -> None:
    from gmgbench.harness import leaderboard

    board = leaderboard.build(spec, store, **kwargs)
    out = leaderboard.write_latest(board)
    print()
    print(board.markdown)
    print(f"(written to {out})")


def metric_settings(text: str) -> dict[str, Any]:
    """``--metrics``: comma-separated names or a JSON ``{name: {setting: value}}``, checked
    as a spec's ``evaluation.metrics`` is."""
    import json

    from gmgbench.harness.spec import check_metric_settings

    try:
        settings = json.loads(text) if text.strip().startswith("{") else {m: {} for m in text.split(",")}
    except json.JSONDecodeError as err:
        raise UserError(f"--metrics: not valid JSON ({err})") from None
    check_metric_settings("--metrics", "", settings)
    return settings


def writable(folder: Path, what: str) -> None:
    """Fail now, in one line, if ``folder`` cannot hold new files (rather than after training)."""
    import tempfile

    from gmgbench.harness.fileio import disk_error

    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: {what} must be a folder, a file is there; give another one")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        mapped = disk_error(err, folder)
        if mapped is None:
            raise
        raise mapped from None
