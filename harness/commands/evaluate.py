"""``gmgbench evaluate|import-dlib|export-dlib``: score a stored model; bring disentanglement_lib models in and
our runs out."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gmgbench.harness.commands.common import metric_settings
from gmgbench.harness.errors import UserError


def cmd_evaluate(args) -> int:
    import json

    from gmgbench.harness import checkpoints
    from gmgbench.harness.evaluation import evaluate_model
    from gmgbench.harness.results import ResultExists, ResultsStore

    store = ResultsStore(args.results)
    if not store.has_result(args.run_id):
        raise UserError(f"{store.result_path(args.run_id)}: no result of run {args.run_id} in {args.results}")
    if not store.model_path(args.run_id).is_file():
        raise UserError(f"{store.model_path(args.run_id)}: the run's model is gone; rerun it with --force")
    result = store.read_result(args.run_id)
    from gmgbench.harness import plugins

    try:
        plugins.load(getattr(args, "plugin", None) or [])  # a plugin metric, and installed packages' metrics
    except plugins.PluginError as err:
        raise UserError(str(err)) from err
    settings = metric_settings(args.metrics)
    settings, added = _settings_of_the_run(args, result, settings)
    # Refuse before the (slow) evaluation: a stored metric is replaced only when asked.
    stored = sorted(set(settings) & set(result.get("metrics", {})))
    if stored and not (args.force or args.no_write):
        raise ResultExists(f"run {args.run_id} in {args.results} already has {', '.join(stored)}; "
                         "pass --force to replace, or --no-write to only print")
    model, run = checkpoints.load_model(store.model_path(args.run_id))
    scores = evaluate_model(model, run, settings)
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
        evaluation = EvaluationSpec({"metrics": metric_settings(args.metrics),
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
    from gmgbench.harness.dlib_format.exporter import export_run
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


def register(sub) -> None:
    """Add ``evaluate``, ``import-dlib``, ``export-dlib`` to the ``gmgbench`` subcommands ``sub``."""
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
