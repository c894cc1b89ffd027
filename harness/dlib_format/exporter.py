"""``gmgbench export-dlib RUN_ID DIR``: one of our trained models as a disentanglement_lib model folder.

The folder is what dlib's ``train`` and ``postprocess`` steps leave behind::

    DIR/tfhub/                          gaussian_encoder, reconstructions, decoder signatures
    DIR/results/{gin/train.gin, json/train_{config,results}.json, aggregate/train.json}
    DIR/postprocessed/mean/tfhub/       representation signature (the posterior mean)
    DIR/postprocessed/mean/results/     the above plus gin/postprocess.gin and its JSON
    DIR/gmgbench_export.json            run id, source result, module checksums, check below

so dlib's ``evaluate`` reads ``DIR/postprocessed/mean`` as if dlib had trained the model.
Before the folder appears (atomically, never over an existing one), the exported module is
loaded back and must reproduce the torch encoder's means on real observations of the run's
dataset to 1e-5.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from gmgbench.harness.dlib_format import graph, hub, importer
from gmgbench.harness.dlib_format.errors import DlibFormatError

__all__ = ["export_run", "CHECK_TOLERANCE"]

CHECK_TOLERANCE = 1e-5
_CHECK_POINTS = 64

# Our objectives in dlib's gin vocabulary (model.model and the parameter that dlib names alike).
_DLIB_MODELS = {"beta_vae": ("vae", ("beta",)), "beta_tcvae": ("beta_tc_vae", ("beta",)),
                "factor_vae": ("factor_vae", ("gamma",)), "annealed_vae": ("annealed_vae", ("c_max", "gamma")),
                "dip_vae": ("dip_vae", ("lambda_od", "lambda_d_factor", "dip_type"))}


def export_run(store, run_id: str, out_dir: str | Path, *, device: str = "cpu") -> Path:
    """Write run ``run_id`` of ``store`` as a dlib model folder ``out_dir`` (must not exist)."""
    from gmgbench.harness import checkpoints  # late: torch, only when a model is exported

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise DlibFormatError(f"{out_dir}: already exists; choose a new folder (nothing is overwritten)")
    model_path = store.model_path(run_id)
    if not model_path.is_file():
        raise DlibFormatError(f"run {run_id}: no trained model at {model_path} "
                              f"(is the run finished in {store.root}?)")
    model, run = checkpoints.load_model(model_path, device="cpu")
    result = store.read_result(run_id) if store.has_result(run_id) else {}
    channels = int(model.encoder[0].in_channels)
    shape = (64, 64, channels)
    weights = graph.tf_variables(model)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        hub.write_module(tmp / "tfhub", functools.partial(graph.build_signatures, model, shape), weights)
        rep_dir = tmp / "postprocessed" / "mean"
        hub.write_module(rep_dir / "tfhub", functools.partial(graph.build_representation, model, shape), weights)
        max_diff = _check(model, run, tmp, device)
        train_gin = _train_gin(run, result, shape)
        train_results = {"elapsed_time": (result.get("training") or {}).get("train_seconds"),
                         "global_step": (result.get("training") or {}).get("steps", run.train.steps),
                         "loss": ((result.get("training") or {}).get("final") or {}).get("loss")}
        _results_dir(tmp / "results", {"train": (train_gin, train_results)})
        post_gin = _gin_text([("dataset.name", repr(run.dataset)), ("postprocess.name", "'mean'"),
                              ("postprocess.postprocess_fn", "@mean_representation"),
                              ("postprocess.random_seed", "0")],
                             "Parameters written by gmgbench export-dlib: the mean representation, as dlib's "
                             "postprocess step with postprocess_fn = @mean_representation would.")
        _results_dir(rep_dir / "results", {"train": (train_gin, train_results),
                                            "postprocess": (post_gin, {"elapsed_time": 0.0})})
        manifest = {
            "format": "disentanglement_lib model folder (TF1 Hub modules)",
            "run_id": run_id, "run": run.name, "study": run.study, "dataset": run.dataset,
            "observation_shape": list(shape), "latent_dim": model.latent_dim,
            "tfhub_sha256": hub.module_checksum(tmp / "tfhub"),
            "representation_sha256": hub.module_checksum(rep_dir / "tfhub"),
            "check": {"points": _CHECK_POINTS, "max_abs_diff_mean": max_diff, "tolerance": CHECK_TOLERANCE},
            "source_result": str(store.result_path(run_id)) if result else None,
            "metrics": result.get("metrics", {}),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / "gmgbench_export.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if out_dir.exists():
            raise DlibFormatError(f"{out_dir}: appeared while exporting; nothing is overwritten")
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _check(model, run, folder: Path, device: str) -> float:
    """Max |mean_TF − mean_torch| on observations of the run's dataset; raises above tolerance."""
    import torch

    from gmgbench.harness import data

    try:
        dataset = data.load(run.dataset, run.dataset_root)
        x = dataset.sample_observations(_CHECK_POINTS, np.random.RandomState(0)).astype(np.float32)
    except (data.DatasetError, FileNotFoundError, OSError):
        # Without the dataset's files, uniform noise still exercises every weight.
        x = np.random.RandomState(0).rand(_CHECK_POINTS, 64, 64, model.encoder[0].in_channels).astype(np.float32)
    with torch.no_grad():
        want = model.encode(torch.from_numpy(x).permute(0, 3, 1, 2))[0].numpy()
    diffs = []
    for sub in ("tfhub", "postprocessed/mean/tfhub"):
        got = importer.module_representation(folder / sub, x.shape[1:], device=device)(x)
        diffs.append(float(np.abs(got - want).max()))
    if max(diffs) > CHECK_TOLERANCE:
        raise DlibFormatError(f"export of run {run.run_id}: the TensorFlow module's means differ from the torch "
                              f"model's by {max(diffs):.2e} (> {CHECK_TOLERANCE}); nothing written")
    return max(diffs)


def _gin_text(bindings: list[tuple[str, str]], header: str) -> str:
    """Gin in dlib's operative-config style; dlib reads it line by line (``key = value``)."""
    lines = [f"# {header}", ""]
    for key, value in bindings:
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def _train_gin(run, result: dict[str, Any], shape) -> str:
    # dlib's model.model names the whole loss: a β-VAE with a regulariser (L1, GMG) is no @vae().
    model_name, shared = _DLIB_MODELS.get(run.objective, (None, ())) if not run.regularisers else (None, ())
    bindings = [("dataset.name", repr(run.dataset)), ("encoder.num_latent", str(run.train.latent_dim)),
                ("model.batch_size", str(run.train.batch_size)), ("model.name", repr(run.method)),
                ("model.random_seed", str(run.seed)), ("model.training_steps", str(run.train.steps))]
    if model_name:
        bindings.append(("model.model", f"@{model_name}()"))
        bindings += [(f"{model_name}.{k}", repr(run.objective_params[k])) for k in shared if k in run.objective_params]
    # What dlib has no word for, under a gmgbench namespace (dlib's aggregation keeps it as a column).
    bindings += [("gmgbench.run_id", repr(run.run_id)), ("gmgbench.study", repr(run.study)),
                 ("gmgbench.objective", repr(run.objective)), ("gmgbench.setting", repr(run.setting)),
                 ("gmgbench.regularisers", repr(json.dumps([{"name": n, "params": p} for n, p in run.regularisers],
                                                           sort_keys=True))),
                 ("gmgbench.architecture", "'gmgbench.methods.architectures.VAE'"),
                 ("gmgbench.git_commit", repr(str((result.get("provenance") or {}).get("git_commit", ""))))]
    return _gin_text(sorted(bindings), "Parameters written by gmgbench export-dlib (dlib's names where dlib has "
                                       "one; gmgbench.* for the rest). The architecture is gmgbench's VAE, "
                                       "not dlib's conv_encoder/deconv_decoder.")


def _results_dir(folder: Path, steps: dict[str, tuple[str, dict]]) -> None:
    """dlib's ``results.update_result_directory`` layout, for each step in order."""
    json_dir = folder / "json"
    json_dir.mkdir(parents=True, exist_ok=True)
    for step, (gin_text, results) in steps.items():
        (folder / "gin").mkdir(exist_ok=True)
        (folder / "gin" / f"{step}.gin").write_text(gin_text)
        (json_dir / f"{step}_config.json").write_text(json.dumps(importer.gin_dict(gin_text), indent=2))
        (json_dir / f"{step}_results.json").write_text(json.dumps({**results, "uuid": str(uuid.uuid4())}, indent=2))
        aggregate = {}
        for f in sorted(json_dir.glob("*.json")):
            aggregate.update({f"{f.stem}.{k}": v for k, v in json.loads(f.read_text()).items()})
        (folder / "aggregate").mkdir(exist_ok=True)
        (folder / "aggregate" / f"{step}.json").write_text(json.dumps(aggregate, indent=2))
