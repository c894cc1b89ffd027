"""Files that ship with gmgbench: study specs, Slurm profiles, the local test cluster's
scripts, example method files.

In the repository they live at the top (``studies/``, ``slurm/profiles/``, ``slurm/local/``,
``docs/examples/``); a built wheel carries copies under ``harness/_assets/`` (setup.py puts
them there). :func:`folder` finds them either way, so ``gmgbench demo`` and ``gmgbench init``
work from any folder after ``pip install gmgbench``.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from gmgbench.harness.fileio import atomic_write

__all__ = ["ASSETS", "folder", "study", "copy_into"]

# folder (relative to the repository root, and to harness/_assets/) -> files that ship.
ASSETS = {"studies": "*.yaml", "slurm/profiles": "*.yaml", "slurm/local": "*.sh", "docs/examples": "*.py"}


def folder(name: str) -> Path:
    """The shipped folder ``name`` (a key of :data:`ASSETS`): the wheel's copy, else the checkout's."""
    if name not in ASSETS:
        raise KeyError(f"unknown asset folder {name!r}; valid: {', '.join(ASSETS)}")
    packaged = Path(str(resources.files("gmgbench.harness").joinpath("_assets", *name.split("/"))))
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[1] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"{name}/ is neither in the installed package ({packaged}) nor in a checkout "
                            f"({checkout}); reinstall gmgbench")


def study(name: str) -> Path:
    """A shipped study spec by name, e.g. ``study("demo")`` -> ``.../studies/demo.yaml``."""
    path = folder("studies") / f"{name}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in folder("studies").glob("*.yaml")))
        raise FileNotFoundError(f"no shipped study {name!r}; shipped studies: {shipped}")
    return path


def copy_into(target: Path, say=print) -> list[Path]:
    """Copy every shipped file into ``target`` with the repository's layout; returns the new files.

    A file already there is kept as it is (it may hold the user's edits) and reported.
    """
    target = Path(target)
    written = []
    for name, pattern in ASSETS.items():
        for src in sorted(folder(name).glob(pattern)):
            dst = target / name / src.name
            if dst.exists():
                say(f"  kept   {dst} (exists)")
                continue
            data = src.read_bytes()
            atomic_write(dst, lambda f: f.write(data))  # an interrupted init never leaves half a file
            if src.suffix == ".sh":  # `sudo slurm/local/up.sh` as docs/slurm.md says: executable where readable
                mode = dst.stat().st_mode
                dst.chmod(mode | (mode & 0o444) >> 2)
            say(f"  wrote  {dst}")
            written.append(dst)
    return written
