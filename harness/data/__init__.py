"""Ground-truth datasets by name: ``load(name, root=None)``.

``root`` defaults to ``$DISENTANGLEMENT_LIB_DATA``; procedural datasets need none. Real
datasets read the official files in disentanglement_lib's layout (docs/datasets.md).
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from gmgbench.harness.data.base import ArrayData, DatasetError, GroundTruthData

__all__ = ["load", "names", "dataset_class", "default_root", "is_procedural", "DatasetError",
           "GroundTruthData", "ArrayData"]

# name -> "module:Class"; imported lazily so that h5py/scipy/PIL load only when needed.
_DATASETS = {
    "dsprites_full": "gmgbench.harness.data.dsprites:DSprites",
    "shapes3d": "gmgbench.harness.data.shapes3d:Shapes3D",
    "smallnorb": "gmgbench.harness.data.smallnorb:SmallNORB",
    "cars3d": "gmgbench.harness.data.cars3d:Cars3D",
    "mpi3d_toy": "gmgbench.harness.data.mpi3d:MPI3DToy",
    "mpi3d_real": "gmgbench.harness.data.mpi3d:MPI3DReal",
    "color_dsprites": "gmgbench.harness.data.dsprites_variants:ColorDSprites",
    "noisy_dsprites": "gmgbench.harness.data.dsprites_variants:NoisyDSprites",
    "scream_dsprites": "gmgbench.harness.data.dsprites_variants:ScreamDSprites",
    "dsprites_procedural": "gmgbench.harness.data.dsprites_procedural:DSpritesProcedural",
    "color_dsprites_procedural": "gmgbench.harness.data.dsprites_variants:ColorDSpritesProcedural",
    "noisy_dsprites_procedural": "gmgbench.harness.data.dsprites_variants:NoisyDSpritesProcedural",
    "scream_dsprites_procedural": "gmgbench.harness.data.dsprites_variants:ScreamDSpritesProcedural",
    "shapes3d_procedural": "gmgbench.harness.data.shapes3d_procedural:Shapes3DProcedural",
}


def names() -> list[str]:
    return sorted(_DATASETS)


def is_procedural(name: str) -> bool:
    return name.endswith("_procedural")


def default_root() -> Path | None:
    root = os.environ.get("DISENTANGLEMENT_LIB_DATA")
    return Path(root) if root else None


def dataset_class(name: str) -> type[GroundTruthData]:
    if name not in _DATASETS:
        raise KeyError(f"unknown dataset {name!r}; valid datasets: {', '.join(names())}")
    module, cls = _DATASETS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def load(name: str, root: str | Path | None = None) -> GroundTruthData:
    """The dataset ``name``; real ones read their files under ``root`` (or ``$DISENTANGLEMENT_LIB_DATA``)."""
    klass = dataset_class(name)
    if is_procedural(name):
        return klass()
    root = Path(root) if root is not None else default_root()
    if root is None:
        raise DatasetError(
            f"dataset {name!r} reads files from disk: set $DISENTANGLEMENT_LIB_DATA or pass root= (--root on the command line); "
            f"`gmgbench data check {name}` shows what is expected, docs/datasets.md how to obtain it"
        )
    if not root.is_dir():
        raise DatasetError(f"dataset {name!r}: data root {root} does not exist (from "
                           f"{'root=' if root != default_root() else '$DISENTANGLEMENT_LIB_DATA'})")
    return klass(root)
