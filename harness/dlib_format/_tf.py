"""The one place that imports TensorFlow, and only when an interop command needs it."""
from __future__ import annotations

import os
import sys

from gmgbench.harness.dlib_format.errors import DlibFormatError

__all__ = ["tensorflow"]


def tensorflow():
    """``tensorflow`` itself, quiet; a clear error when the ``tf`` extra is not installed."""
    loaded = sys.modules.get("tensorflow")
    if loaded is not None and getattr(loaded, "__file__", None) is None:
        # Test helpers stand in a fake module for dlib's metric code; it cannot run graphs.
        raise DlibFormatError("a stand-in 'tensorflow' module is loaded in this process; "
                              "import the real TensorFlow before disentanglement_lib's metric shims")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ banner on every command
    # oneDNN reorders float sums (its banner says so); plain kernels keep exports reproducible.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf
    except ImportError:
        raise DlibFormatError("disentanglement_lib interop needs TensorFlow: "
                              "pip install 'gmgbench[tf]' (or `make venv`, which installs it)") from None
    tf.get_logger().setLevel("ERROR")  # the compat.v1 graph APIs warn on every call
    return tf
