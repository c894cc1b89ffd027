"""disentanglement_lib interop: its TF1 Hub model folders in, ours out (docs/dlib.md).

    import_model(model_dir, store, name=...)   # evaluate a dlib model with our metrics
    export_run(store, run_id, out_dir)         # write our run as a dlib model folder

TensorFlow (the optional ``tf`` extra) is imported only inside these functions: importing
this package, or anything else in gmgbench, never loads it.
"""
from __future__ import annotations

from gmgbench.harness.dlib_format.errors import DlibFormatError

__all__ = ["DlibFormatError", "import_model", "export_run", "module_representation", "module_checksum"]


def __getattr__(name):  # lazy: the submodules are cheap, but keep the package import trivial
    if name in ("import_model", "module_representation"):
        from gmgbench.harness.dlib_format import importer

        return getattr(importer, name)
    if name == "export_run":
        from gmgbench.harness.dlib_format.exporter import export_run

        return export_run
    if name == "module_checksum":
        from gmgbench.harness.dlib_format.hub import module_checksum

        return module_checksum
    raise AttributeError(name)
