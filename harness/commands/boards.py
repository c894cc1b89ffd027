"""``gmgbench leaderboard``: build, publish, rebuild-check a study's board, and plan seeds (``--power``)."""
from __future__ import annotations

import sys
from pathlib import Path

from gmgbench.harness.commands.common import add_spec_edits, preview_reason, print_leaderboard, load_study
from gmgbench.harness.errors import UsageError, UserError


def _leaderboard_command(args) -> str:
    """The publish command as a user would retype it (recorded in the release's manifest)."""
    import shlex

    parts = ["gmgbench", "leaderboard", str(args.study), "--publish"]
    for flag, value in (("--results", args.results), ("--root", args.root), ("--notes", args.notes)):
        if value is not None:
            parts += [flag, _portable_path(value)]
    parts += [f for f, on in (("--all-settings", args.all_settings), ("--no-figures", args.no_figures),
                              ("--allow-stale", args.allow_stale)) if on]
    parts += [x for item in args.set for x in ("--set", item)]
    parts += ["--only", *args.only] if args.only else []
    return " ".join(shlex.quote(p) for p in parts)


def _portable_path(path) -> str:
    """A path as the published command shows it: relative to the working directory when
    inside it, else ``.../<name>`` (a release must not hold the publisher's home directory)."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return f".../{p.name}"


def _notes(path: Path | None) -> str | None:
    """The release notes file of ``--notes``, read before anything is written."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read the release notes ({type(err).__name__}: {err})") from None


def cmd_leaderboard(args) -> int:
    from gmgbench.harness import leaderboard

    if args.rebuild is not None and (args.publish or args.study is not None):
        raise UsageError("--rebuild RELEASE checks a published release and publishes nothing; run it alone, and "
                         "publish with `gmgbench leaderboard STUDY.yaml --publish`")
    if args.rebuild is not None:
        same, report = leaderboard.verify(args.rebuild, results=args.results)
        checked = f"; result files in {args.results} match their SHA-256" if args.results else ""
        if same:
            print(f"{args.rebuild}/leaderboard.md: rebuilt from manifest.json, identical; every file matches "
                  f"its SHA-256 in manifest.json{checked}")
            return 0
        print(report, end="")
        print(f"{args.rebuild}: the rebuild, the release's files or the results differ (see above)", file=sys.stderr)
        return 1
    if args.power is not None:
        from gmgbench.harness.leaderboard.release import plan

        if args.pairs is not None and args.pairs < 2:
            raise UsageError(f"--pairs: a paired t-test needs at least 2 pairs, got {args.pairs}")

        print(plan(args.power, effect=args.effect, pairs=args.pairs), end="")
        return 0
    if args.effect is not None or args.pairs is not None:
        raise UsageError("--effect and --pairs go with --power RELEASE")
    if args.study is None:
        raise UsageError("give a study spec, or --rebuild leaderboards/<study>/vN")
    if args.notes is not None and not args.publish:
        raise UsageError("--notes goes with --publish (they head the new version's CHANGELOG entry)")
    notes = _notes(args.notes)
    spec, store = load_study(args)
    if args.publish:
        release = leaderboard.publish(spec, store, all_settings=args.all_settings, root=args.root,
                                      command=_leaderboard_command(args), allow_stale=args.allow_stale,
                                      figures=False if args.no_figures else None, notes=notes)
        print(f"published {release}")
        print(f"{release / 'leaderboard.md'}")
        return 0
    print_leaderboard(spec, store, all_settings=args.all_settings, root=args.root, allow_stale=args.allow_stale,
                       preview=preview_reason(args))
    return 0


def register(sub) -> None:
    """Add ``leaderboard`` to the ``gmgbench`` subcommands ``sub``."""
    p = sub.add_parser("leaderboard", help="build the study's markdown leaderboard from its results")
    p.add_argument("study", type=Path, nargs="?", default=None, help="study spec (YAML)")
    p.add_argument("--results", type=Path, default=None,
                   help="results store (default: <project>/results/<study name>)")
    add_spec_edits(p)
    p.add_argument("--publish", action="store_true", help="write an immutable release leaderboards/<study>/vN/")
    p.add_argument("--all-settings", action="store_true", help="one row per hyperparameter setting, no selection")
    p.add_argument("--root", type=Path, default=None,
                   help="leaderboards folder (default: $GMGBENCH_LEADERBOARDS, else <project>/leaderboards)")
    p.add_argument("--no-figures", action="store_true", help="publish without figures")
    p.add_argument("--notes", type=Path, default=None, metavar="FILE",
                   help="with --publish: markdown saying why this version exists; it heads the version's "
                        "CHANGELOG entry and is kept in its manifest")
    p.add_argument("--allow-stale", action="store_true",
                   help="let a cell average runs of different method code (marked 'mixed code' in the cell)")
    p.add_argument("--rebuild", type=Path, default=None, metavar="RELEASE",
                   help="rebuild RELEASE/leaderboard.md (e.g. leaderboards/demo/v1) from its manifest and check "
                        "it is identical (with --results, also check the store's result files against the "
                        "manifest); exit 1 with a diff if not")
    p.add_argument("--power", type=Path, default=None, metavar="RELEASE",
                   help="plan seeds before training: per claim of RELEASE (e.g. leaderboards/cpu-repro/v2), the "
                        "minimum detectable effect at 80 %% power and the pairs a decisive verdict needs, from its "
                        "observed sd and Holm family")
    p.add_argument("--effect", type=float, default=None, metavar="DELTA",
                   help="with --power: the effect to plan for (default: each claim's observed |Δ|)")
    p.add_argument("--pairs", type=int, default=None, metavar="N",
                   help="with --power: the judged seeds per method to evaluate (default: the release's)")
    p.set_defaults(func=cmd_leaderboard)
