"""The official files of each real dataset: where they go, their sizes, checksums and sources.

Checksums are the ones published by several independent public projects (see
docs/datasets.md for where each comes from). Where no public SHA-256 exists we record the
MD5 that is published; where neither is known the check says "unknown checksum" rather
than failing. Never add a checksum computed here from a file of unknown origin.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from gmgbench.harness.data.base import DatasetError

__all__ = ["OfficialFile", "FileStatus", "OFFICIAL_FILES", "check_file", "file_digest", "require"]


@dataclass(frozen=True)
class OfficialFile:
    """One file under ``$DISENTANGLEMENT_LIB_DATA``; ``download`` is what the sources serve.

    ``download`` differs from ``path`` when the sources serve it compressed (``.gz``) or
    inside an archive; ``download_sha256``/``download_md5`` then describe the download.
    """

    path: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    urls: tuple[str, ...] = ()
    download: str | None = None
    download_size: int | None = None
    download_sha256: str | None = None
    download_md5: str | None = None
    note: str = ""
    count: int | None = None  # for a folder: how many .mat files it must hold

    @property
    def known_digest(self) -> tuple[str, str] | None:
        if self.sha256:
            return "sha256", self.sha256
        if self.md5:
            return "md5", self.md5
        return None


_NORB = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
# The same files under the host's older name, and the Internet Archive's copy of the page's links.
_NORB_OLD = "http://www.cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
_WAYBACK = "https://web.archive.org/web/2020/"


def _norb(chunk: str, kind: str, size: int, md5: str, gz_md5: str) -> OfficialFile:
    name = f"smallnorb-{chunk}-{kind}.mat"
    return OfficialFile(
        path=f"small_norb/{name}", size=size, md5=md5,
        urls=(_NORB + name + ".gz", _NORB_OLD + name + ".gz", _WAYBACK + _NORB + name + ".gz"),
        download=name + ".gz", download_md5=gz_md5,
    )


_TRAIN, _TEST = "5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing"
# NORB sizes follow from the header format: 8 bytes + 3 dims × 4 bytes + data.
_DAT, _CAT, _INFO = 20 + 4 + 24300 * 2 * 96 * 96, 20 + 24300 * 4, 20 + 24300 * 4 * 4

OFFICIAL_DSPRITES = OfficialFile(
    path="dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    md5="7da33b31b13a06f4b04a70402ce90c2e",
    urls=(
        "https://github.com/google-deepmind/dsprites-dataset/raw/master/"
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        "https://raw.githubusercontent.com/deepmind/dsprites-dataset/master/"
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
    ),
)

OFFICIAL_FILES: dict[str, tuple[OfficialFile, ...]] = {
    "dsprites_full": (OFFICIAL_DSPRITES,),
    # dlib's dSprites variants recolour the same file's images
    "color_dsprites": (OFFICIAL_DSPRITES,),
    "noisy_dsprites": (OFFICIAL_DSPRITES,),
    "scream_dsprites": (
        OFFICIAL_DSPRITES,
        OfficialFile(
            path="scream/scream.jpg",
            urls=("https://upload.wikimedia.org/wikipedia/commons/f/f4/The_Scream.jpg",),
            note="the image disentanglement_lib's download script fetches; no published checksum",
        ),
    ),
    "shapes3d": (
        OfficialFile(
            path="3dshapes/3dshapes.h5", size=267_573_662,
            sha256="0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785",
            md5="099a2078d58cec4daad0702c55d06868",
            urls=(
                "https://storage.googleapis.com/3d-shapes/3dshapes.h5",
                "https://console.cloud.google.com/storage/browser/_details/3d-shapes/3dshapes.h5",
            ),
        ),
    ),
    "smallnorb": (
        _norb(_TRAIN, "dat", _DAT, "8138a0902307b32dfa0025a36dfa45ec", "66054832f9accfe74a0f4c36a75bc0a2"),
        _norb(_TRAIN, "cat", _CAT, "fd5120d3f770ad57ebe620eb61a0b633", "23c8b86101fbf0904a000b43d3ed2fd9"),
        _norb(_TRAIN, "info", _INFO, "19faee774120001fc7e17980d6960451", "51dee1210a742582ff607dfd94e332e3"),
        _norb(_TEST, "dat", _DAT, "e9920b7f7b2869a8f1a12e945b2c166c", "e4ad715691ed5a3a5f138751a4ceb071"),
        _norb(_TEST, "cat", _CAT, "fd5120d3f770ad57ebe620eb61a0b633", "5aa791cd7e6016cf957ce9bdb93b8603"),
        _norb(_TEST, "info", _INFO, "7c5b871cc69dcadec1bf6a18141f5edc", "a9454f3864d7fd4bb3ea7fc3eb84924e"),
    ),
    "cars3d": (
        OfficialFile(
            path="cars",
            urls=(
                "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz",
                _WAYBACK + "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz",
            ),
            download="nips2015-analogy-data.tar.gz",
            download_md5="4e866a7919c1beedf53964e6f7a23686",
            note="a folder of 183 car_XXX_mesh.mat files (data/cars/ in the archive); "
                 "no public per-file checksums",
            count=183,
        ),
    ),
    "mpi3d_toy": (
        OfficialFile(
            path="mpi3d_toy/mpi3d_toy.npz", md5="55889cb7c7dfc655d6e0277beee88868",
            urls=(
                "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/mpi3d_toy.npz",
                # dlib's own link (dead by 2024; kept for mirrors that copied its layout)
                "https://storage.googleapis.com/disentanglement_dataset/data_npz/sim_toy_64x_ordered_without_heldout_factors.npz",
                "https://huggingface.co/datasets/waleedgondal/mpi3d/resolve/main/mpi3d_toy.npz",
            ),
        ),
    ),
    "mpi3d_real": (
        OfficialFile(
            path="mpi3d_real/mpi3d_real.npz", md5="0f33f609918fb5c97996692f91129802",
            urls=(
                "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/mpi3d_real.npz",
                "https://huggingface.co/datasets/waleedgondal/mpi3d/resolve/main/mpi3d_real.npz",
            ),
        ),
    ),
}


@dataclass
class FileStatus:
    """What ``check_file`` found: ok | unknown checksum | present | missing | incomplete | wrong size | MISMATCH."""

    spec: OfficialFile
    location: Path
    state: str
    detail: str = ""
    digest: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.state in ("missing", "incomplete", "wrong size", "MISMATCH")


def file_digest(path: Path, algorithm: str = "sha256", chunk: int = 1 << 22) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_file(spec: OfficialFile, root: Path, verify: bool = True) -> FileStatus:
    """Presence, size and checksum of one official file (a folder's files are only counted)."""
    location = Path(root) / spec.path
    if location.is_dir():
        count = len([p for p in os.listdir(location) if p.endswith(".mat")])
        if count == 0:
            return FileStatus(spec, location, "missing", "folder holds no .mat files")
        if spec.count is not None and count != spec.count:
            return FileStatus(spec, location, "incomplete", f"{count} .mat files, expected {spec.count}")
        return FileStatus(spec, location, "unknown checksum", f"{count} .mat files; no public per-file checksums")
    if not location.is_file():
        return FileStatus(spec, location, "missing")
    size = location.stat().st_size
    if spec.size is not None and size != spec.size:
        return FileStatus(spec, location, "wrong size", f"{size:,} bytes, expected {spec.size:,} (truncated or another file)")
    known = spec.known_digest
    if not verify:
        return FileStatus(spec, location, "present", f"{size:,} bytes, checksum not verified")
    sha = file_digest(location, "sha256")
    digest = {"sha256": sha}
    if known is None:
        return FileStatus(spec, location, "unknown checksum", f"sha256 {sha}", digest)
    algorithm, expected = known
    actual = sha if algorithm == "sha256" else file_digest(location, algorithm)
    digest[algorithm] = actual
    if actual != expected:
        return FileStatus(spec, location, "MISMATCH", f"{algorithm} {actual}, expected {expected}", digest)
    return FileStatus(spec, location, "ok", f"{algorithm} verified", digest)


def require(path: Path, what: str, dataset: str) -> Path:
    """``path`` if it exists, else a DatasetError that says where it was looked for and what to do."""
    if not path.exists():
        parent = path.parent
        where = f"{parent} does not exist" if not parent.exists() else f"{parent} has no {path.name}"
        raise DatasetError(
            f"{dataset}: missing {what} {path} ({where}); run `gmgbench data prepare {dataset}` "
            f"or see docs/datasets.md"
        )
    return path
