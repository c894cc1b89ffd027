"""``gmgbench launch|status``: submit a study to Slurm as job arrays, and what is done, queued or failed."""
from __future__ import annotations

import argparse
from pathlib import Path

from gmgbench.harness.commands.common import add_callback_args, add_study_args, callbacks_of, load_study


def cmd_launch(args) -> int:
    from gmgbench.harness.slurm.launch import launch
    from gmgbench.harness.slurm.profile import load_profile

    import dataclasses

    spec, store = load_study(args)
    spec = dataclasses.replace(spec, callbacks=callbacks_of(spec, args))  # the jobs log where the spec says
    profile = load_profile(args.profile)
    plans = launch(spec, store, profile, dry_run=args.dry_run, retry_failed=args.retry_failed, force=args.force,
                   rerun_stale=args.rerun_stale, say=lambda s: print(s, flush=True),
                   verbose=getattr(args, "verbose", False))
    if args.dry_run:
        _print_estimate(spec, store, profile, probe=args.probe, runs=[r for p in plans for r in p.runs])
    return 0


def _print_estimate(spec, store, profile, probe: int | None, runs=None) -> None:
    """Training time of ``runs`` (default: those not done; a dry run passes what it would
    submit), in GPU-hours for runs that get a GPU and in CPU-job-hours for the others, each
    from the best step time there is (gmgbench.harness.estimate)."""
    from gmgbench.harness import estimate
    from gmgbench.harness.results import ResultsStore
    from gmgbench.harness.slurm.plan import run_resources

    todo = runs if runs is not None else [r for r in spec.runs() if not store.has_result(r.run_id)]
    if not todo:
        return
    by_unit: dict[str, list] = {}
    for run in todo:
        res = run_resources(run, profile)
        gpu = bool(res.get("gpus_per_node")) or "gpu" in str(res.get("slurm_gres", ""))
        by_unit.setdefault("GPU" if gpu else "CPU-job", []).append(run)
    others = [ResultsStore(p) for p in sorted(store.root.parent.glob("*"))
              if p.is_dir() and p.resolve() != store.root.resolve()]
    for unit, runs in by_unit.items():
        probe_seconds = None
        if probe and unit == "CPU-job":
            print(f"probing: {probe} beta-VAE steps here ...", flush=True)
            probe_seconds = estimate.probe_step_seconds(runs[0], steps=probe)
        elif probe:
            print("(--probe measures this machine's CPU: not used for the runs that get a GPU)", flush=True)
        print(estimate.describe(runs, store, profile.step_seconds, unit=unit, probe_seconds=probe_seconds,
                                also=others), flush=True)


def cmd_status(args) -> int:
    import json

    from gmgbench.harness.status import collect_status, format_status

    spec, store = load_study(args, check_methods=False)  # status never imports torch
    report = collect_status(spec, store, tail=args.tail)
    print(json.dumps(report, indent=1, default=str) if args.json else format_status(report))
    return 0


def register(sub) -> None:
    """Add ``launch``, ``status`` to the ``gmgbench`` subcommands ``sub``."""
    p = sub.add_parser("launch", help="submit the study's missing runs to Slurm as job arrays")
    add_study_args(p)
    p.add_argument("--profile", type=Path, required=True, help="cluster profile, e.g. slurm/profiles/local.yaml")
    add_callback_args(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be submitted: arrays, runs per method and dataset, time estimate")
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="with --dry-run, also list every run")
    p.add_argument("--probe", type=int, nargs="?", const=30, default=None, metavar="STEPS",
                   help="with --dry-run, time STEPS (30) beta-VAE steps here for the CPU-job estimate")
    p.add_argument("--retry-failed", action="store_true",
                   help="also resubmit runs that failed (one whose checkpoint other method code wrote starts over)")
    p.add_argument("--rerun-stale", action="store_true",
                   help="also rerun done runs whose method code changed, as run --force does: beside the stored "
                        "result, swapped in only when complete")
    p.add_argument("--force", action="store_true",
                   help="rerun every run that is not queued or running, as run --force does (beside the stored "
                        "results, each swapped in only when complete)")
    p.set_defaults(func=cmd_launch)

    p = sub.add_parser("status", help="done / running / queued / failed runs of a study")
    add_study_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--tail", type=int, default=5, help="last lines of a failed run's stderr to show")
    p.set_defaults(func=cmd_status)
