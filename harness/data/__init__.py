"""Ground-truth datasets by name: ``load(name, root=None)``.

``root`` defaults to ``$DISENTANGLEMENT_LIB_DATA``; procedural datasets need none.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from harness.data.base import DatasetError, GroundTruthData

__all__ = ["load", "names", "default_root", "DatasetError", "GroundTruthData"]

# name -> "module:Class"; imported lazily so that h5py/scipy load only when needed.
_DATASETS = {
    "dsprites_procedural": "harness.data.dsprites_procedural:DSpritesProcedural",
}


def names() -> list[str]:
    return sorted(_DATASETS)


def default_root() -> Path | None:
    root = os.environ.get("DISENTANGLEMENT_LIB_DATA")
    return Path(root) if root else None


def load(name: str, root: str | Path | None = None) -> GroundTruthData:
    if name not in _DATASETS:
        raise KeyError(f"unknown dataset {name!r}; valid datasets: {', '.join(names())}")
    module, cls = _DATASETS[name].split(":")
    klass = getattr(importlib.import_module(module), cls)
    if getattr(klass, "needs_root", False):
        root = Path(root) if root is not None else default_root()
        if root is None:
            raise DatasetError(
                f"dataset {name!r} reads files from disk: set $DISENTANGLEMENT_LIB_DATA or pass root=; "
                f"see docs/datasets.md for how to obtain it"
            )
        return klass(root)
    return klass()
