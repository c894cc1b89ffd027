"""``gmgbench import-dlib MODEL_DIR``: a disentanglement_lib model, scored by our metrics.

A dlib model folder keeps its TF-Hub module in ``tfhub/``. A trained model's module has a
``gaussian_encoder`` signature (images → ``mean``, ``logvar``); a postprocessed one
(``postprocessed/<name>/``) has ``representation`` (images → ``default``). The
representation function is the posterior mean (dlib's ``mean_representation``), or the
``representation`` output when that is all the module has. It is evaluated with
:func:`metrics.evaluate` exactly as our own runs are, and stored as an *external* result:
``<store>/external/<id>.json``, recording the module's SHA-256 (see
:func:`gmgbench.harness.dlib_format.hub.module_checksum`) as provenance. Leaderboards show it
labelled ``<name> (external)``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from gmgbench.harness.dlib_format.entries import external_id, study_evaluation
from gmgbench.harness.dlib_format.errors import DlibFormatError
from gmgbench.harness.dlib_format.hub import load_signatures, module_checksum
from gmgbench.harness.sections import EvaluationSpec

__all__ = ["find_module", "module_representation", "import_model", "external_id", "dataset_from_gin"]

# signature -> (input, output) used as the representation, in order of preference.
_SIGNATURES = {"gaussian_encoder": ("images", "mean"), "representation": ("images", "default")}


def find_module(model_dir: str | Path) -> Path:
    """``MODEL_DIR/tfhub`` (or MODEL_DIR itself when it is the module folder)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise DlibFormatError(f"{model_dir}: no such folder")
    if (model_dir / "tfhub").is_dir():
        return model_dir / "tfhub"
    if (model_dir / "saved_model.pb").is_file():
        return model_dir
    raise DlibFormatError(f"{model_dir}: no tfhub/ folder (a dlib model folder holds its TF-Hub module in tfhub/)")


def module_representation(module_dir: str | Path, observation_shape, *, batch_size: int = 64,
                          device: str = "auto") -> Callable[[np.ndarray], np.ndarray]:
    """NHWC float batch → representation ``(N, D)``, computed ``batch_size`` images at a time.

    ``observation_shape`` (H, W, C) is the dataset's; a module expecting other images is an
    error naming both shapes. ``device``: ``cpu``, ``gpu`` or ``auto`` (a GPU if TF sees one).
    """
    from gmgbench.harness.dlib_format._tf import tensorflow

    sigs = load_signatures(module_dir)
    name = next((s for s in _SIGNATURES if s in sigs), None)
    if name is None:
        have = ", ".join(sorted(sigs)) or "none"
        raise DlibFormatError(f"{module_dir}: the module has neither a 'gaussian_encoder' nor a 'representation' "
                              f"signature (it has: {have})")
    in_key, out_key = _SIGNATURES[name]
    fn = sigs[name]
    if in_key not in fn.inputs or out_key not in fn.outputs:
        raise DlibFormatError(f"{module_dir}: signature {name!r} must map {in_key!r} to {out_key!r}; it maps "
                              f"{sorted(fn.inputs)} to {sorted(fn.outputs)}")
    want = tuple(int(d) for d in observation_shape)
    got = tuple(fn.inputs[in_key].shape.as_list()[1:])
    if len(got) != 3:
        raise DlibFormatError(f"{module_dir}: signature {name!r} takes {in_key} of shape {[None, *got]}, "
                              f"not a batch of images [batch, height, width, channels]")
    if got[:2] != want[:2] and None not in got[:2]:
        raise DlibFormatError(f"{module_dir}: the module takes {got[0]}×{got[1]} images, the dataset has "
                              f"{want[0]}×{want[1]}")
    if got[2] != want[2] and got[2] is not None:
        raise DlibFormatError(f"{module_dir}: the module takes images with {got[2]} channel(s), the dataset has "
                              f"{want[2]}")
    tf = tensorflow()
    if device not in ("auto", "cpu", "gpu"):
        raise DlibFormatError(f"device must be auto, cpu or gpu, got {device!r}")
    if device == "auto":
        device = "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    elif device == "gpu" and not tf.config.list_logical_devices("GPU"):
        raise DlibFormatError("--device gpu: TensorFlow sees no GPU (tensorflow-cpu is CPU-only)")

    def represent(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        out = []
        with tf.device(f"/{device.upper()}:0"):
            for i in range(0, len(x), batch_size):
                out.append(fn(**{in_key: tf.constant(x[i:i + batch_size])})[out_key].numpy())
        width = fn.outputs[out_key].shape[-1]
        return np.concatenate(out) if out else np.zeros((0, width or 0), np.float32)

    represent.signature = f"{name}/{out_key}"  # type: ignore[attr-defined]
    return represent


def gin_dict(text: str) -> dict[str, str]:
    """dlib's ``results.gin_dict``: the ``key = value`` lines of a gin file, comments skipped."""
    out = {}
    for line in text.split("\n"):
        if not line.startswith("#") and " = " in line:
            key, value = line.split(" = ", 1)
            out[key.strip()] = value.strip()
    return out


def _gin_bindings(model_dir: str | Path) -> dict[str, str]:
    """The bindings of the model's ``results/gin/train.gin`` and ``postprocess.gin``, as text."""
    out: dict[str, str] = {}
    for name in ("train.gin", "postprocess.gin"):
        path = Path(model_dir) / "results" / "gin" / name
        if path.is_file():
            out.update(gin_dict(path.read_text(errors="replace")))
    return out


def dataset_from_gin(model_dir: str | Path) -> str | None:
    """``dataset.name`` of the model's gin files, if they name one."""
    name = _gin_bindings(model_dir).get("dataset.name", "").strip("'\"")
    return name or None


def gmgbench_origin(model_dir: str | Path) -> dict[str, str] | None:
    """``{"run_id", "study"}`` when the folder is a gmgbench run exported by ``export-dlib``
    (its gin binds ``gmgbench.run_id``), else None: such a model is no outside model."""
    gin = _gin_bindings(model_dir)
    run_id = gin.get("gmgbench.run_id", "").strip("'\"")
    return {"run_id": run_id, "study": gin.get("gmgbench.study", "").strip("'\"")} if run_id else None


def check_not_own_run(model_dir: str | Path, store) -> dict[str, str] | None:
    """Refuse a re-import of a run of ``store``: scored again through TensorFlow its numbers
    move by rounding (MIG 0.00530 against the run's 0.00492 in one probe: a histogram bin of
    2,000 codes moved by a < 1e-6 difference), and it would be ranked against its own source."""
    origin = gmgbench_origin(model_dir)
    if origin is not None and (store.has_result(origin["run_id"]) or store.workdir(origin["run_id"]).is_dir()):
        raise DlibFormatError(
            f"{model_dir}: an export of run {origin['run_id']} of this results store ({store.root}); its "
            "leaderboard already ranks that run, and the re-imported copy would be ranked against it. To check "
            "the round trip, import it into another store (--results DIR)")
    return origin


def import_model(model_dir: str | Path, store, *, name: str, dataset: str | None = None,
                 dataset_root: str | None = None, evaluation: EvaluationSpec | Mapping[str, Any] | None = None,
                 force: bool = False, device: str = "auto", batch_size: int = 64) -> tuple[Path, dict]:
    """Evaluate the dlib model at ``model_dir`` and store it as external result ``name``.

    ``evaluation`` is a study's evaluation block (an :class:`~gmgbench.harness.sections.EvaluationSpec`
    or its ``{"metrics": {name: kwargs}, "seed": int}``; default: MIG
    and DCI at dlib's study sizes, seed 0). Returns the result path and the result.
    """
    from gmgbench import metrics
    from gmgbench.harness import data
    from gmgbench.harness.results import ResultExists, atomic_write_json, provenance

    model_dir = Path(model_dir)
    module = find_module(model_dir)
    origin = check_not_own_run(model_dir, store)
    dataset = dataset or dataset_from_gin(model_dir)
    if dataset is None:
        raise DlibFormatError(f"{model_dir}: no results/gin/train.gin names the dataset; pass --dataset")
    if dataset not in data.names():
        raise DlibFormatError(f"{model_dir}: dataset {dataset!r} is not one of gmgbench's: {', '.join(data.names())}")
    evaluation = study_evaluation({"metrics": {"mig": {}, "dci": {}}} if evaluation is None else evaluation)
    ext_id = external_id(name, dataset, evaluation)
    path = store.external_path(ext_id)
    if path.exists() and not force:
        raise ResultExists(f"{path} already holds external model {name!r} on {dataset}; pass --force to replace it")
    ds = data.load(dataset, dataset_root)
    represent = module_representation(module, ds.observation_shape, batch_size=batch_size, device=device)
    checksum = module_checksum(module)
    start = time.time()
    scores = metrics.evaluate(ds, represent, evaluation["metrics"], random_seed=evaluation["seed"])
    result = {
        "schema": 1,
        "status": "done",
        "external": {"name": name, "format": "disentanglement_lib TF1 Hub module", "model_dir": str(model_dir.resolve()),
                     "module": str(module.resolve()), "module_sha256": checksum, "representation": represent.signature,
                     "gin": _gin_bindings(model_dir),
                     # a gmgbench run that went out and came back: labelled so on boards
                     **({"gmgbench_export": origin} if origin else {})},
        "config": {"dataset": dataset, "dataset_root": dataset_root, "evaluation": evaluation},
        "metrics": scores,
        "provenance": {**provenance(), "eval_seconds": time.time() - start},
    }
    atomic_write_json(path, result)
    return path, result


def import_study_externals(spec, store, *, force: bool = False, report=print) -> list[str]:
    """Evaluate the spec's ``external:`` models that have no result yet; returns the failures.

    Each failure is one line naming the entry; the others are still evaluated.
    """
    failures = []
    for entry in spec.external:
        path = store.external_path(external_id(entry.name, entry.dataset, spec.evaluation))
        if path.exists() and not force:
            report(f"  skipped {entry.label} (evaluated: {path})")
            continue
        root = dict(spec.datasets).get(entry.dataset)
        try:
            import_model(entry.path, store, name=entry.name, dataset=entry.dataset, dataset_root=root,
                         evaluation=spec.evaluation, force=True)
            report(f"  done    {entry.label}")
        except DlibFormatError as err:
            failures.append(f"{entry.label}: {err}")
            report(f"  failed  {entry.label}  ({err})")
    return failures
