"""The ``gmgbench`` command: parse arguments, call the module that does the work, report.

Errors a user can fix (a bad spec, an unknown name, a missing file) are
:class:`gmgbench.harness.errors.UserError`; :func:`main` alone catches them and prints one clear
line (exit 1). ``--debug``, anywhere on the command line, shows the traceback as well. Any
other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gmgbench.harness.commands import boards, data, evaluate, jobs, local
from gmgbench.harness.errors import UsageError, UserError

__all__ = ["main", "build_parser"]


# -- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gmgbench", description="Train, evaluate and rank disentangled representation learning methods "
                                     "(study specs in, results stores and leaderboards out).",
        epilog="Start with `gmgbench demo`, or `gmgbench init DIR` for a project of your own; "
               "`gmgbench COMMAND --help` for a command's options.")
    for flags, kwargs in _GLOBAL_OPTIONS.items():
        parser.add_argument(*flags, **kwargs)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (local, evaluate, boards, jobs, data):  # the order of `gmgbench --help`
        group.register(sub)
    return parser


# Options accepted before the subcommand and after it (by every subcommand, nested ones and
# those other modules register included: see _global_options_everywhere).
_GLOBAL_OPTIONS = {
    ("--debug",): dict(action="store_true", default=False, help="show tracebacks"),
    ("--project",): dict(type=Path, default=None, metavar="DIR",
                         help="project folder for results/ and leaderboards/ (default: $GMGBENCH_PROJECT, "
                              "else the current folder)"),
    ("-v", "--verbose"): dict(action="store_true", default=False, help="log what happens (INFO level)"),
}


def _global_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """Add :data:`_GLOBAL_OPTIONS` to every subcommand below ``parser``.

    SUPPRESS keeps a subcommand that was not given the option from resetting the value
    parsed before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for flags, kwargs in _GLOBAL_OPTIONS.items():
                    # a subcommand's own option of that name (launch --verbose) keeps its help
                    free = [f for f in flags if f not in sub._option_string_actions]
                    if free:
                        dest = flags[-1].lstrip("-").replace("-", "_")
                        sub.add_argument(*free, **{**kwargs, "dest": dest, "default": argparse.SUPPRESS})
                _global_options_everywhere(sub)


def _use_project(folder: Path) -> None:
    """``--project DIR``: the folder for results/ and leaderboards/, for this command and its workers."""
    import os

    from gmgbench.harness import project

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--project {folder}: not a folder (a file is there); give the project folder, "
                         "e.g. --project . or the folder `gmgbench init` wrote")
    os.environ[project.ENV] = str(folder.resolve())  # workers and Slurm jobs inherit it


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("gmgbench")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    _global_options_everywhere(parser)
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.project is not None:
            _use_project(args.project)
        return int(args.func(args) or 0)
    except UserError as err:  # the one place a user's mistake becomes a message
        if args.debug:
            raise
        print(f"gmgbench {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # `gmgbench status | head -1`: the reader has gone, nothing is wrong
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a command whose reader left
    except OSError as err:  # a full disk or a read-only folder met outside gmgbench.harness.fileio
        from gmgbench.harness.fileio import disk_error

        mapped = disk_error(err, err.filename or "a file")
        if mapped is None or args.debug:
            raise
        print(f"gmgbench {args.command}: error: {mapped}", file=sys.stderr)
        return mapped.exit_code
    except KeyboardInterrupt:
        print("interrupted; finished runs are stored, runs in progress checkpointed: rerun to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
