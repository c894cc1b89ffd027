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
from typing import Any

from gmgbench.harness.errors import UsageError, UserError

__all__ = ["main"]



def _add_spec_edits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec value before validation, e.g. train.steps=100 or methods.0.params.beta=[1,4] "
                        "(repeatable; run ids change exactly as editing the spec would)")
    p.add_argument("--only", nargs="+", action="extend", default=[], metavar="KEY=V1,V2",
                   help="keep a subset of the study: dataset=..., method=<label>, seed=... (comma-separated)")


def _add_run_output(p: argparse.ArgumentParser) -> None:
    _add_callback_args(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display (the summary only)")


def _add_callback_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tensorboard", action="store_true",
                   help="log every curve, the metrics and the health record to <store>/work/<run>/tensorboard/ "
                        "(needs: pip install 'gmgbench[tensorboard]')")
    p.add_argument("--callback", action="append", default=[], metavar="NAME",
                   help="add a run callback: an entry point of gmgbench.callbacks, or module:attr (repeatable)")


def _add_study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="study spec (YAML)")
    p.add_argument("--results", type=Path, default=None,
                   help="results store (default: <project>/results/<study name>)")
    _add_spec_edits(p)


# -- command handlers -------------------------------------------------------------------
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


def _study(args, check_methods: bool = True):
    from gmgbench.harness.executors import store_for
    from gmgbench.harness.spec import load_spec

    spec = load_spec(args.study, check_methods=check_methods, sets=getattr(args, "set", ()),
                     only=getattr(args, "only", ()))
    return spec, store_for(spec.name, args.results)


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

    spec, store = _study(args)
    runs = spec.runs()
    callbacks = _callbacks(spec, args)  # a bad --callback is refused before anything is created
    _writable(store.root, "the results store")
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
        _print_leaderboard(spec, store, preview=_preview(args))
    return 1 if failed or external_failed else 0


def _callbacks(spec, args) -> tuple:
    """The spec's callbacks plus those of --tensorboard / --callback (each once)."""
    from gmgbench.harness.callbacks import resolve

    extra = (["tensorboard"] if getattr(args, "tensorboard", False) else []) + list(getattr(args, "callback", []) or [])
    names = {name for name, _ in spec.callbacks}
    for name in extra:
        _check_callback_name(name)
        resolve(name)  # an unknown name fails here, before anything trains
    if "tensorboard" in {*names, *extra}:
        import importlib.util

        from gmgbench.harness.callbacks import CallbackError

        if importlib.util.find_spec("tensorboard") is None:
            raise CallbackError("TensorBoard logging needs the tensorboard package: pip install 'gmgbench[tensorboard]'")
    return tuple(spec.callbacks) + tuple((n, {}) for n in dict.fromkeys(extra) if n not in names)


def _check_callback_name(name: str) -> None:
    """``module:attr`` with a module name ``import`` takes (``:attr``, ``..x:y`` are not)."""
    import re

    from gmgbench.harness.callbacks import CallbackError

    dotted = r"[^\W\d]\w*(\.[^\W\d]\w*)*"
    module, colon, attr = name.partition(":")
    if colon and not (re.fullmatch(dotted, module) and re.fullmatch(dotted, attr)):
        raise CallbackError(f"--callback {name!r}: expected module:attr, an importable module and a name in it "
                            "(e.g. mypkg.tracking:make_tracker), or an entry point's name")


def _preview(args) -> str | None:
    """Why a board built from this command line is not the study's working board (None: it may be).

    A run narrowed by --only/--set sees another study: its board is a labelled preview and
    never replaces latest.md; so is one from another results store than latest.md's, which
    ``leaderboard.write_latest`` decides (docs/leaderboards.md)."""
    why = [f"--only {' '.join(args.only)}"] if getattr(args, "only", None) else []
    why += [f"--set {item}" for item in getattr(args, "set", None) or ()]
    return "; ".join(f"`{w}`" for w in why) or None


def _print_leaderboard(spec, store, **kwargs) -> None:
    from gmgbench.harness import leaderboard

    board = leaderboard.build(spec, store, **kwargs)
    out = leaderboard.write_latest(board)
    print()
    print(board.markdown)
    print(f"(written to {out})")


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
    _writable(target, "the project folder")
    print(f"gmgbench init {target}: the shipped study specs, Slurm profiles, local Slurm scripts and example methods")
    written = assets.copy_into(target)
    print(f"{len(written)} files written. Next, in {target}:\n"
          "  gmgbench run studies/demo.yaml --workers 2      # results in ./results/demo/\n"
          "  gmgbench leaderboard studies/demo.yaml          # ./leaderboards/demo/latest.md")
    return 0


def _metric_settings(text: str) -> dict[str, Any]:
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


def cmd_evaluate(args) -> int:
    import json

    from gmgbench.harness import train
    from gmgbench.harness.results import ResultExists, ResultsStore

    store = ResultsStore(args.results)
    if not store.has_result(args.run_id):
        raise UserError(f"{store.result_path(args.run_id)}: no result of run {args.run_id} in {args.results}")
    if not (store.workdir(args.run_id) / "model.pt").is_file():
        raise UserError(f"{store.workdir(args.run_id) / 'model.pt'}: the run's model is gone; rerun it with --force")
    result = store.read_result(args.run_id)
    from gmgbench.harness import plugins

    try:
        plugins.load(getattr(args, "plugin", None) or [])  # a plugin metric, and installed packages' metrics
    except plugins.PluginError as err:
        raise UserError(str(err)) from err
    settings = _metric_settings(args.metrics)
    settings, added = _settings_of_the_run(args, result, settings)
    # Refuse before the (slow) evaluation: a stored metric is replaced only when asked.
    stored = sorted(set(settings) & set(result.get("metrics", {})))
    if stored and not (args.force or args.no_write):
        raise ResultExists(f"run {args.run_id} in {args.results} already has {', '.join(stored)}; "
                         "pass --force to replace, or --no-write to only print")
    model, run = train.load_model(store.workdir(args.run_id))
    scores = train.evaluate_model(model, run, settings)
    if not args.no_write:
        result["metrics"] = {**result.get("metrics", {}), **scores}
        if added:  # the settings of scores the run's own config does not list
            result["evaluation_added"] = {**(result.get("evaluation_added") or {}), **added}
        store.write_result(args.run_id, {k: v for k, v in result.items() if k != "schema"}, overwrite=True)
    print(json.dumps(scores, indent=1))
    return 0


def _settings_of_the_run(args, result: dict[str, Any], settings: dict[str, Any]) -> tuple[dict, dict]:
    """``evaluate``'s settings checked against the run's own config: a metric the config lists
    is computed with the config's settings (a name alone takes them); other settings would
    store scores that contradict the config, shown on boards as the study's, so they are
    refused unless ``--no-write``. Returns (the settings, those of metrics the config lacks)."""
    import json

    config = ((result.get("config") or {}).get("evaluation") or {}).get("metrics") or {}
    named_only = not args.metrics.strip().startswith("{")
    out, added = {}, {}
    for name, kw in settings.items():
        own = dict(config[name] or {}) if name in config else None
        if own is None:
            out[name] = added[name] = kw
        elif named_only or dict(kw or {}) == own:
            out[name] = own
        elif not args.no_write:
            raise UserError(f"--metrics: run {args.run_id} was evaluated with {name} {json.dumps(own)} (its config in "
                            f"{args.results}); scores with {json.dumps(kw)} would contradict it on every board: "
                            "pass --no-write to only print them, or change the spec's evaluation and rerun the "
                            "study (new run ids)")
        else:
            out[name] = kw
    return out, added


def cmd_import_dlib(args) -> int:
    import json

    from gmgbench.harness.dlib_format.errors import DlibFormatError
    from gmgbench.harness.dlib_format.importer import dataset_from_gin, import_model
    from gmgbench.harness.executors import store_for
    from gmgbench.harness.sections import EvaluationSpec

    evaluation, root = None, args.root
    if args.study is not None:
        from gmgbench.harness.spec import load_spec

        spec = load_spec(args.study)
        store = store_for(spec.name, args.results)
        evaluation = spec.evaluation
        dataset = args.dataset or dataset_from_gin(args.model_dir)
        if dataset is not None and dataset not in dict(spec.datasets):
            raise DlibFormatError(f"{args.model_dir}: dataset {dataset!r} is not one of study {spec.name}'s "
                                  f"({', '.join(dict(spec.datasets))}); it would not appear on its leaderboard")
        root = root or dict(spec.datasets).get(dataset)
    elif args.results is not None:
        from gmgbench.harness.results import ResultsStore

        store = ResultsStore(args.results)
    else:
        raise DlibFormatError("import-dlib: give --study SPEC (its store, metrics and leaderboard) or --results STORE")
    if args.metrics:
        evaluation = EvaluationSpec({"metrics": _metric_settings(args.metrics),
                                     "seed": evaluation.seed if evaluation is not None else 0})
    name = args.name or args.model_dir.resolve().name
    path, result = import_model(args.model_dir, store, name=name, dataset=args.dataset, dataset_root=root,
                                evaluation=evaluation, force=args.force, device=args.device,
                                batch_size=args.batch_size)
    ext = result["external"]
    print(f"{name} (external) on {result['config']['dataset']}: module sha256 {ext['module_sha256']}, "
          f"representation {ext['representation']}")
    print(json.dumps(result["metrics"], indent=1))
    print(f"(written to {path})")
    return 0


def cmd_export_dlib(args) -> int:
    from gmgbench.harness.dlib_format.errors import DlibFormatError
    from gmgbench.harness.dlib_format.export import export_run
    from gmgbench.harness.executors import store_for

    if args.study is not None:
        from gmgbench.harness.spec import load_spec

        store = store_for(load_spec(args.study).name, args.results)
    elif args.results is not None:
        from gmgbench.harness.results import ResultsStore

        store = ResultsStore(args.results)
    else:
        raise DlibFormatError("export-dlib: give --results STORE (or --study SPEC) holding the run")
    out = export_run(store, args.run_id, args.out_dir)
    print(f"exported run {args.run_id} as a disentanglement_lib model folder: {out}")
    print(f"  dlib's evaluate reads {out / 'postprocessed' / 'mean'} (representation signature)")
    return 0


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
    spec, store = _study(args)
    if args.publish:
        release = leaderboard.publish(spec, store, all_settings=args.all_settings, root=args.root,
                                      command=_leaderboard_command(args), allow_stale=args.allow_stale,
                                      figures=False if args.no_figures else None, notes=notes)
        print(f"published {release}")
        print(f"{release / 'leaderboard.md'}")
        return 0
    _print_leaderboard(spec, store, all_settings=args.all_settings, root=args.root, allow_stale=args.allow_stale,
                       preview=_preview(args))
    return 0


def cmd_launch(args) -> int:
    from gmgbench.harness.slurm.launch import launch
    from gmgbench.harness.slurm.profile import load_profile

    import dataclasses

    spec, store = _study(args)
    spec = dataclasses.replace(spec, callbacks=_callbacks(spec, args))  # the jobs log where the spec says
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

    spec, store = _study(args, check_methods=False)  # status never imports torch
    report = collect_status(spec, store, tail=args.tail)
    print(json.dumps(report, indent=1, default=str) if args.json else format_status(report))
    return 0


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

    p = sub.add_parser("demo", help="train and evaluate the shipped small study, print its leaderboard")
    p.add_argument("--results", type=Path, default=None, help="results store (default: <project>/results/demo)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="runs trained at once, one process each (default: 2)")
    _add_spec_edits(p)
    _add_run_output(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("init", help="copy the shipped study specs, Slurm profiles and example methods into DIR")
    p.add_argument("dir", type=Path, nargs="?", default=Path("."), help="project folder (default: here)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="run a study here (N worker processes), skipping finished runs")
    _add_study_args(p)
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="runs trained at once, one process each (default: 1, in this process)")
    p.add_argument("--force", action="store_true",
                   help="redo runs whose result exists (trained beside the old run, swapped in when complete)")
    p.add_argument("--repair", action="store_true",
                   help="move corrupt results and failure records, and checkpoints this code cannot resume (corrupt, "
                        "incomplete, other method code), to <results>/quarantine/ and rerun")
    p.add_argument("--no-leaderboard", action="store_true")
    _add_run_output(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("methods", help="list registered methods and their parameters")
    p.add_argument("--plugin", action="append", help="also load this method file")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("evaluate", help="compute metrics of a stored model into its result")
    p.add_argument("run_id")
    p.add_argument("--results", type=Path, required=True, help="results store holding the run")
    p.add_argument("--metrics", default="mig,dci",
                   help="comma-separated names (a metric the run's config lists keeps its settings), or a JSON "
                        "{name: {kwargs}}; settings that contradict the run's config are only printed (--no-write)")
    p.add_argument("--force", action="store_true", help="replace metrics the result already has")
    p.add_argument("--no-write", action="store_true", help="print the scores, leave the result as it is")
    p.add_argument("--plugin", action="append", metavar="FILE",
                   help="a metric plugin file to load first (docs/new-metric.md); repeatable")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("leaderboard", help="build the study's markdown leaderboard from its results")
    p.add_argument("study", type=Path, nargs="?", default=None, help="study spec (YAML)")
    p.add_argument("--results", type=Path, default=None,
                   help="results store (default: <project>/results/<study name>)")
    _add_spec_edits(p)
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

    p = sub.add_parser("import-dlib", help="evaluate a disentanglement_lib model (TF-Hub folder) with our metrics "
                                           "as an external leaderboard entry (needs the tf extra)")
    p.add_argument("model_dir", type=Path, help="dlib model folder (holding tfhub/), or a postprocessed one")
    p.add_argument("--study", type=Path, default=None, help="study spec: its results store, metrics and datasets")
    p.add_argument("--results", type=Path, default=None, help="results store (default with --study: results/<study>)")
    p.add_argument("--name", default=None, help="label on the leaderboard (default: the folder's name)")
    p.add_argument("--dataset", default=None, help="dataset name (default: the one the model's train.gin names)")
    p.add_argument("--root", default=None, help="dataset files (default: $DISENTANGLEMENT_LIB_DATA)")
    p.add_argument("--metrics", default=None, help="comma-separated names, or JSON {name: {kwargs}} "
                                                   "(default: the study's, else mig,dci)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--force", action="store_true", help="replace this model's stored result")
    p.set_defaults(func=cmd_import_dlib)

    p = sub.add_parser("export-dlib", help="write a trained run as a disentanglement_lib model folder "
                                           "(TF-Hub modules + gin/JSON; needs the tf extra)")
    p.add_argument("run_id")
    p.add_argument("out_dir", type=Path, help="new folder to create")
    p.add_argument("--results", type=Path, default=None, help="results store holding the run")
    p.add_argument("--study", type=Path, default=None, help="study spec (its store: results/<study>)")
    p.set_defaults(func=cmd_export_dlib)

    p = sub.add_parser("launch", help="submit the study's missing runs to Slurm as job arrays")
    _add_study_args(p)
    p.add_argument("--profile", type=Path, required=True, help="cluster profile, e.g. slurm/profiles/local.yaml")
    _add_callback_args(p)
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
    _add_study_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--tail", type=int, default=5, help="last lines of a failed run's stderr to show")
    p.set_defaults(func=cmd_status)

    try:
        from gmgbench.harness.data import cli as data_cli
    except ImportError:  # pragma: no cover - present in every install
        data_cli = None
    if data_cli is not None and hasattr(data_cli, "register"):
        data_cli.register(sub)
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


def _writable(folder: Path, what: str) -> None:
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
