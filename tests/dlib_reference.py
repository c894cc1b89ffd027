"""Import disentanglement_lib 1.5 (the reference) on today's libraries, without TensorFlow.

Only tests import this. dlib 1.5 was written for TensorFlow 1, gin-config < 0.5 and NumPy 1,
so before dlib is imported it patches:
1. ``gin.tf`` and ``tensorflow.compat.v1`` (only ``gfile.GFile``/``gfile.Open`` and
   ``gfile.ListDirectory`` are used by the modules we call) as small stand-in modules, so
   the metrics import without TensorFlow;
2. ``gin.configurable``'s ``blacklist``/``whitelist`` keywords, which gin-config removed
   (renamed ``denylist``/``allowlist``) and dlib still passes;
3. ``np.float_``, removed in NumPy 2 and still used by dlib's metrics.
Then it binds the gin parameters of dlib's unsupervised study configs.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
import types

import numpy as np
import pytest
from gin_compat import patch_configurable

_READY = False


def _install_shims() -> None:
    import gin

    if "gin.tf" not in sys.modules:
        sys.modules["gin.tf"] = types.ModuleType("gin.tf")
        gin.tf = sys.modules["gin.tf"]  # type: ignore[attr-defined]
    patch_configurable()
    if "tensorflow" not in sys.modules:
        gfile = types.SimpleNamespace(
            GFile=open, Open=open, ListDirectory=os.listdir, Exists=os.path.exists, IsDirectory=os.path.isdir
        )
        compat_v1 = types.ModuleType("tensorflow.compat.v1")
        compat_v1.gfile = gfile  # type: ignore[attr-defined]
        compat = types.ModuleType("tensorflow.compat")
        compat.v1 = compat_v1  # type: ignore[attr-defined]
        tf = types.ModuleType("tensorflow")
        # A spec without an origin: importlib.util.find_spec("tensorflow") (torch._dynamo asks
        # when it first loads) raises on a module whose __spec__ is None.
        tf.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None)
        tf.compat = compat  # type: ignore[attr-defined]
        tf.gfile = gfile  # type: ignore[attr-defined]
        sys.modules.update({"tensorflow": tf, "tensorflow.compat": compat, "tensorflow.compat.v1": compat_v1})
    if not hasattr(np, "float_"):
        np.float_ = np.float64  # type: ignore[attr-defined]


def bind_study_defaults() -> None:
    """The gin bindings of dlib's unsupervised_study_v1 metric configs."""
    import gin

    for name in ("mig", "factor_vae", "irs", "modularity_explicitness", "unsupervised_metrics"):
        dlib(f"evaluation.metrics.{name}")
    with gin.unlock_config():
        gin.bind_parameter("discretizer.discretizer_fn", dlib("evaluation.metrics.utils")._histogram_discretize)
        gin.bind_parameter("discretizer.num_bins", 20)
        gin.bind_parameter("prune_dims.threshold", 0.05)


def dlib(module: str):
    """``dlib("evaluation.metrics.mig")`` → the reference module; skips if dlib is absent."""
    global _READY
    try:
        importlib.import_module("disentanglement_lib")
    except ImportError:  # pragma: no cover - the Makefile installs it
        pytest.skip("disentanglement-lib==1.5 is not installed (make venv installs it)")
    if not _READY:
        _install_shims()
        _READY = True
    return importlib.import_module(f"disentanglement_lib.{module}")
