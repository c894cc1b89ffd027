"""gin-config 0.5 renamed ``gin.configurable``'s ``blacklist=``/``whitelist=`` keywords, which
disentanglement_lib still passes, to ``denylist=``/``allowlist=`` (NOTES: dlib-compat).

Imported both by tests/dlib_reference.py (the test environment) and by
tests/dlib_format/dlib_side.py (run as a script by dlib's own TF1 Python), so it imports
nothing but gin, and only when called.
"""
from __future__ import annotations


def patch_configurable() -> None:
    """Make ``gin.configurable`` accept the old keywords (once; calling again does nothing)."""
    import gin

    if getattr(gin.configurable, "_gmgbench_shim", False):
        return
    original = gin.configurable

    def configurable(*args, blacklist=None, whitelist=None, **kwargs):
        if blacklist is not None:
            kwargs["denylist"] = blacklist
        if whitelist is not None:
            kwargs["allowlist"] = whitelist
        return original(*args, **kwargs)

    configurable._gmgbench_shim = True  # type: ignore[attr-defined]
    gin.configurable = configurable
