"""TF1 Hub modules (disentanglement_lib's model format), written and read with plain TensorFlow.

A TF1 Hub module is a folder holding ``tfhub_module.pb`` (a ``ModuleDef`` proto saying
``format: FORMAT_V3``), ``saved_model.pb`` (a SavedModel with one MetaGraphDef per tag set,
each carrying the module's signatures) and ``variables/`` (a TF checkpoint keyed by variable
name). ``tensorflow_hub`` ≥ 0.16 can no longer write one (``hub.create_module_spec`` is gone)
and older hubs do not import on today's TensorFlow, so :func:`write_module` builds the same
files from ``tf.compat.v1`` graph APIs, exactly as ``hub.create_module_spec(...).export()``
lays them out: graphs exported with default attributes stripped (older TensorFlow loads
them), signatures as SignatureDefs, resource variables, a sharded V2 checkpoint.
disentanglement_lib's own ``hub.Module`` loading code reads the result (tested).

Reading goes through ``tf.saved_model.load(path, tags=[])``, which is what
``tensorflow_hub.load`` does for this format.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from gmgbench.harness.dlib_format._tf import tensorflow
from gmgbench.harness.dlib_format.errors import DlibFormatError

__all__ = ["write_module", "load_signatures", "module_checksum", "MODULE_FILE"]

MODULE_FILE = "tfhub_module.pb"
# ModuleDef{format: FORMAT_V3} serialised: field 1 (varint) = 3. Written by hand so that
# writing needs no tensorflow_hub; tensorflow_hub's module_def.proto defines it.
_MODULE_DEF_V3 = b"\x08\x03"

# (tags, keyword arguments of the graph builder), as dlib's export_as_tf_hub passes them.
TAGS_AND_ARGS = (({"train"}, {"is_training": True}), (set(), {"is_training": False}))

# build(is_training) -> {signature name: (inputs {name: tensor}, outputs {name: tensor})}
GraphBuilder = Callable[..., Mapping[str, tuple[Mapping, Mapping]]]


def write_module(path: str | Path, build: GraphBuilder, variables: Mapping[str, np.ndarray]) -> Path:
    """Write a TF1 Hub module at ``path`` (must not exist), its variables set to ``variables``.

    ``build(is_training=...)`` creates the graph in the current default graph, creating each
    variable with :func:`tf.compat.v1.get_variable` under the name it has in ``variables``
    (zero-initialised: the checkpoint carries the values), and returns the signatures.
    The folder appears whole or not at all.
    """
    tf = tensorflow()
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(path)
    if path.exists():
        raise DlibFormatError(f"{path}: already exists; choose a new folder (nothing is overwritten)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        proto = saved_model_pb2.SavedModel(saved_model_schema_version=1)
        for tags, kwargs in TAGS_AND_ARGS:
            with tf.Graph().as_default() as graph:
                with tf.compat.v1.variable_scope("", use_resource=True):
                    signatures = build(**kwargs)
                meta_graph = tf.compat.v1.train.export_meta_graph(graph=graph, strip_default_attrs=True)
                meta_graph.meta_info_def.tags.extend(sorted(tags))
                for name, (inputs, outputs) in signatures.items():
                    meta_graph.signature_def[name].CopyFrom(_signature_def(tf, inputs, outputs))
                if not tags:
                    _save_variables(tf, graph, variables, tmp / "variables" / "variables")
            proto.meta_graphs.append(meta_graph)
        (tmp / "saved_model.pb").write_bytes(proto.SerializeToString())
        (tmp / MODULE_FILE).write_bytes(_MODULE_DEF_V3)
        (tmp / "assets").mkdir(exist_ok=True)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _signature_def(tf, inputs: Mapping, outputs: Mapping):
    build = tf.compat.v1.saved_model.utils.build_tensor_info
    return tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        {k: build(v) for k, v in inputs.items()}, {k: build(v) for k, v in outputs.items()})


def _save_variables(tf, graph, values: Mapping[str, np.ndarray], prefix: Path) -> None:
    """Checkpoint the graph's variables with the given values, keyed by variable name."""
    by_name = {v.op.name: v for v in graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)}
    missing, unused = sorted(set(by_name) - set(values)), sorted(set(values) - set(by_name))
    if missing or unused:
        raise ValueError(f"graph variables and values differ: missing values {missing}, unused values {unused}")
    with tf.compat.v1.Session(graph=graph) as sess:
        for name, var in by_name.items():
            value = np.asarray(values[name], dtype=var.dtype.as_numpy_dtype)
            if tuple(var.shape.as_list()) != value.shape:
                raise ValueError(f"variable {name}: graph shape {var.shape.as_list()}, value shape {value.shape}")
            sess.run(var.assign(value))  # after the export: these constants are not saved
        prefix.parent.mkdir(parents=True, exist_ok=True)
        saver = tf.compat.v1.train.Saver(by_name, sharded=True, write_version=tf.compat.v1.train.SaverDef.V2)
        saver.save(sess, str(prefix), write_meta_graph=False, write_state=False)


def load_signatures(module_dir: str | Path, required: tuple[str, ...] = ()) -> dict:
    """The module's signatures ``{name: concrete function}``; each of ``required`` must exist."""
    module_dir = Path(module_dir)
    if not module_dir.is_dir():
        raise DlibFormatError(f"{module_dir}: no such folder (a dlib model keeps its TF-Hub module in tfhub/)")
    if not (module_dir / "saved_model.pb").is_file():
        raise DlibFormatError(f"{module_dir}: not a TF-Hub module (no saved_model.pb)")
    tf = tensorflow()
    try:
        loaded = tf.saved_model.load(str(module_dir), tags=[])
    except Exception as err:  # any reason a module does not load is the module's, said in one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DlibFormatError(f"{module_dir}: TensorFlow cannot load this module: {first}") from None
    signatures = dict(loaded.signatures)
    for name in required:
        if name not in signatures:
            have = ", ".join(sorted(signatures)) or "none"
            raise DlibFormatError(f"{module_dir}: the module has no {name!r} signature (it has: {have})")
    # Keep the loaded object alive as long as its functions: they hold its variables.
    return {name: _KeepAlive(fn, loaded) for name, fn in signatures.items()}


class _KeepAlive:
    def __init__(self, fn, owner):
        self.fn, self._owner = fn, owner

    def __call__(self, **kwargs):
        return self.fn(**kwargs)

    @property
    def inputs(self) -> dict:
        """``{input name: TensorSpec}``."""
        return dict(self.fn.structured_input_signature[1])

    @property
    def outputs(self) -> dict:
        return dict(self.fn.structured_outputs)


def module_checksum(module_dir: str | Path) -> str:
    """SHA-256 over the module's files: for each file in sorted relative-path order, the
    line ``<sha256 of the file>  <relative path>\\n`` (``sha256sum``'s format), hashed."""
    module_dir = Path(module_dir)
    lines = []
    for f in sorted(p for p in module_dir.rglob("*") if p.is_file()):
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        lines.append(f"{h.hexdigest()}  {f.relative_to(module_dir).as_posix()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()
