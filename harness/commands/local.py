"""``gmgbench demo|init|run|methods``: set up a project, run a study on this machine, list the methods."""
from __future__ import annotations

import sys
from pathlib import Path

from gmgbench.harness.commands.common import (add_run_output, add_spec_edits, add_study_args, callbacks_of,
                                             preview_reason, print_leaderboard, load_study, writable)
from gmgbench.harness.errors import UserError


def cmd_methods(args) -> int:
    from gmgbench.methods import registry

    try:
        registry.load_entry_points()
        for path in args.plugin or []:
            registry.load_plugin_file(path)
    except registry.PluginError as err:  # methods never import the harness: its error, our type
        raise UserError(str(err)) from err
    import dataclasses

    for kind in ("objective", "regulariser"):
        print(f"{kind}s:")
        for name in registry.names(kind):
            cls = registry.get(name, kind)
            params = ", ".join(
                f"{k}={'<required>' if v is dataclasses.MISSING else repr(v)}" for k, v in cls.parameters().items()
            )
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            print(f"  {name:<14} {params}")
            if doc:
                print(f"  {'':<14} {doc}")
    return 0


def _warn_changed_defaults(runs, store) -> None:
    """Finished runs are skipped by id; say so when their methods' defaults or code changed since."""
    from gmgbench.harness.stale import stale_reasons
    from gmgbench.harness.train import changed_defaults

    for run in runs:
        if store.has_result(run.run_id):
            result = store.read_result(run.run_id)
            changes = changed_defaults(run, result)
            if changes:
                print(f"warning: {run.name} is done but ran with other defaults: {'; '.join(changes)}; "
                      "it is kept (--force reruns it)", file=sys.stderr)
            stale = stale_reasons(run, result)
            if stale:
                print(f"stale: {run.name} ({run.run_id}) ran other method code ({'; '.join(stale)}); "
                      "it is kept (--force reruns it)", file=sys.stderr)


def cmd_run(args) -> int:
    from gmgbench.harness.executors import run_local

    spec, store = load_study(args)
    runs = spec.runs()
    callbacks = callbacks_of(spec, args)  # a bad --callback is refused before anything is created
    writable(store.root, "the results store")
    print(f"{spec.name}: {len(runs)} runs, results in {store.root}/", flush=True)
    unscored = not spec.evaluation.metrics
    if unscored:  # said before training, not discovered as an empty board after it
        print(f"note: {spec.path or spec.name}: evaluation: "
              f"{'no such block' if 'evaluation' not in (spec.raw or {}) else 'no metrics'}, so the runs are "
              "trained but not scored and there is no leaderboard; add e.g. "
              "`evaluation: {metrics: {mig: {}, dci: {}}}` to score them", file=sys.stderr, flush=True)
    if not args.force:
        _warn_changed_defaults(runs, store)
    outcomes = run_local(runs, store, workers=args.workers, force=args.force, plugins=spec.plugins,
                         callbacks=callbacks, label=spec.name, progress=not args.quiet,
                         repair=args.repair)
    failed = [o for o in outcomes if o.status in ("failed", "corrupt")]
    external_failed = []
    if spec.external:  # models trained elsewhere (dlib format); only these need TensorFlow
        from gmgbench.harness.dlib_format.importer import import_study_externals

        print(f"{spec.name}: {len(spec.external)} external models", flush=True)
        external_failed = import_study_externals(spec, store, force=args.force)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "busy", "failed", "corrupt")}
    busy = f", {counts['busy']} being trained by another process" if counts["busy"] else ""
    corrupt = f", {counts['corrupt']} with a corrupt file (--repair moves it aside and reruns)" if counts["corrupt"] else ""
    print(f"{spec.name}: {counts['done']} done, {counts['skipped']} already done{busy}, {counts['failed']} failed{corrupt}")
    for o in failed:
        if o.status == "corrupt":
            print(f"  corrupt: {o.error}", file=sys.stderr)
        else:  # name the failure record only where it was written (not on a full or read-only disk)
            record = store.failure_path(o.run_id)
            details = f" (details: {record})" if record.is_file() else " (no failure record could be written)"
            print(f"  failed: {o.name}: {o.error}{details}", file=sys.stderr)
    if not args.no_leaderboard and not counts["corrupt"] and not unscored:
        print_leaderboard(spec, store, preview=preview_reason(args))
    return 1 if failed or external_failed else 0


def cmd_demo(args) -> int:
    from gmgbench.harness import assets
    from gmgbench.harness.spec import load_spec

    args.study = assets.study("demo")  # shipped with the package: works from any folder
    args.force = False
    args.repair = False
    args.no_leaderboard = False
    spec = load_spec(args.study, sets=args.set, only=args.only)
    sizes = "; ".join(f"{name} " + ", ".join(f"{k}={v}" for k, v in (kw or {}).items())
                      for name, kw in spec.evaluation.metrics.items())
    print(f"gmgbench demo ({args.study}): procedural dSprites, β-VAE vs β-VAE + GMG (cosine, decoder),\n"
          f"{len(spec.seeds)} seeds, {spec.train['steps']} steps per run.\n"
          f"Metric sizes are reduced for a 2-core machine: {sizes}\n"
          "(disentanglement_lib's studies use 10000 training / 5000 test points), so the numbers\n"
          "are a check of the whole pipeline, not a result.", flush=True)
    return cmd_run(args)


def cmd_init(args) -> int:
    from gmgbench.harness import assets

    target = args.dir.resolve()
    writable(target, "the project folder")
    print(f"gmgbench init {target}: the shipped study specs, Slurm profiles, local Slurm scripts and example methods")
    written = assets.copy_into(target)
    print(f"{len(written)} files written. Next, in {target}:\n"
          "  gmgbench run studies/demo.yaml --workers 2      # results in ./results/demo/\n"
          "  gmgbench leaderboard studies/demo.yaml          # ./leaderboards/demo/latest.md")
    return 0


def register(sub) -> None:
    """Add ``demo``, ``init``, ``run``, ``methods`` to the ``gmgbench`` subcommands ``sub``."""
    p = sub.add_parser("demo", help="train and evaluate the shipped small study, print its leaderboard")
    p.add_argument("--results", type=Path, default=None, help="results store (default: <project>/results/demo)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="runs trained at once, one process each (default: 2)")
    add_spec_edits(p)
    add_run_output(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("init", help="copy the shipped study specs, Slurm profiles and example methods into DIR")
    p.add_argument("dir", type=Path, nargs="?", default=Path("."), help="project folder (default: here)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="run a study here (N worker processes), skipping finished runs")
    add_study_args(p)
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="runs trained at once, one process each (default: 1, in this process)")
    p.add_argument("--force", action="store_true",
                   help="redo runs whose result exists (trained beside the old run, swapped in when complete)")
    p.add_argument("--repair", action="store_true",
                   help="move corrupt results and failure records, and checkpoints this code cannot resume (corrupt, "
                        "incomplete, other method code), to <results>/quarantine/ and rerun")
    p.add_argument("--no-leaderboard", action="store_true")
    add_run_output(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("methods", help="list registered methods and their parameters")
    p.add_argument("--plugin", action="append", help="also load this method file")
    p.set_defaults(func=cmd_methods)
