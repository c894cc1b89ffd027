"""``gmgbench data check|prepare|show``: what is on disk, how to get the rest, what it looks like.

``register(subparsers)`` adds the ``data`` command; each handler takes the argparse
Namespace and returns an exit code, and raises DatasetError for clear failures.
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

from gmgbench.harness import data as datasets
from gmgbench.harness.data import files
from gmgbench.harness.data.base import DatasetError

__all__ = ["register", "check", "prepare", "show"]

_TIMEOUT_S = 30


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("data", help="check, prepare or look at datasets")
    sub = parser.add_subparsers(dest="data_command", required=True)
    root_help = "data root (default: $DISENTANGLEMENT_LIB_DATA)"

    p = sub.add_parser("check", help="where each dataset was looked for, which files are present and intact")
    p.add_argument("name", nargs="?", choices=datasets.names(), metavar="NAME")
    p.add_argument("--root", help=root_help)
    p.add_argument("--no-verify", action="store_true", help="check sizes only, skip checksums")
    p.add_argument("--load", action="store_true", help="also load each present dataset and validate its arrays")
    p.set_defaults(func=check)

    p = sub.add_parser("prepare", help="download with checksum verification, or say what to fetch and where")
    p.add_argument("name", choices=datasets.names(), metavar="NAME")
    p.add_argument("--root", help=root_help)
    p.add_argument("--no-download", action="store_true", help="only print what to fetch and where to put it")
    p.set_defaults(func=prepare)

    p = sub.add_parser("show", help="write a PNG grid of samples and single-factor sweeps")
    p.add_argument("name", choices=datasets.names(), metavar="NAME")
    p.add_argument("--root", help=root_help)
    p.add_argument("--out", help="PNG path (default: <NAME>_samples.png)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=show)
    return parser


def _root(args) -> tuple[Path | None, str]:
    if getattr(args, "root", None):
        return Path(args.root), "--root"
    root = datasets.default_root()
    return root, "$DISENTANGLEMENT_LIB_DATA" if root else "not set"


def _out(line: str = "") -> None:
    print(line, file=sys.stdout)


def check(args) -> int:
    root, source = _root(args)
    _out(f"data root: {root if root else '(none)'}  [{source}]")
    wanted = [args.name] if args.name else datasets.names()
    failed = False
    for name in wanted:
        if datasets.is_procedural(name):
            _out(f"{name}: procedural, no files needed")
            continue
        if root is None:
            _out(f"{name}: not checked, no data root (set $DISENTANGLEMENT_LIB_DATA or pass --root)")
            failed |= bool(args.name)
            continue
        statuses = [files.check_file(spec, root, verify=not args.no_verify) for spec in files.OFFICIAL_FILES[name]]
        present = sum(s.state != "missing" for s in statuses)
        _out(f"{name}: {present}/{len(statuses)} present")
        for s in statuses:
            detail = f" ({s.detail})" if s.detail else ""
            _out(f"  {s.state:<16} {s.location}{detail}")
        # Without a name, a dataset nobody downloaded is not a failure; a damaged one is.
        bad = [s for s in statuses if s.failed and (args.name or s.state != "missing")]
        failed |= bool(bad)
        if args.load and present == len(statuses) and not bad:
            try:
                ds = datasets.load(name, root)
                _out(f"  loaded: {ds!r}")
            except DatasetError as e:
                _out(f"  load failed: {e}")
                failed = True
    return 1 if failed else 0


def _fetch(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as r, open(dest, "wb") as f:
        shutil.copyfileobj(r, f, length=1 << 22)


def _verify(path: Path, sha256: str | None, md5: str | None) -> str:
    """'' when the digest matches or none is known, else a message."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = files.file_digest(path, algorithm)
            return "" if actual == expected else f"{algorithm} {actual}, expected {expected}"
    return ""


def _install(spec: files.OfficialFile, download: Path, root: Path) -> None:
    target = root / spec.path
    target.parent.mkdir(parents=True, exist_ok=True)
    if download.name.endswith(".tar.gz"):
        with tarfile.open(download) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and Path(m.name).parent.name == target.name
                       and m.name.endswith(".mat")]
            if not members:
                raise DatasetError(f"{download}: no {target.name}/*.mat files in the archive")
            target.mkdir(parents=True, exist_ok=True)
            for m in members:
                with tar.extractfile(m) as src, open(target / Path(m.name).name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    elif download.name.endswith(".gz") and not spec.path.endswith(".gz"):
        with gzip.open(download, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 22)
    else:
        shutil.move(download, target)


def _instructions(name: str, spec: files.OfficialFile, root: Path | None) -> str:
    where = (root / spec.path) if root else Path("$DISENTANGLEMENT_LIB_DATA") / spec.path
    lines = [f"  fetch {spec.download or Path(spec.path).name} from one of:"]
    lines += [f"    {u}" for u in spec.urls]
    if spec.download and spec.download.endswith(".tar.gz"):
        lines.append(f"  and extract its data/cars/*.mat files into {where}/")
    elif spec.download and spec.download.endswith(".gz"):
        lines.append(f"  and gunzip it to {where}")
    else:
        lines.append(f"  and put it at {where}")
    digest = spec.download_sha256 or spec.download_md5 or spec.sha256 or spec.md5
    lines.append(f"  expected checksum: {digest if digest else 'unknown'}")
    return "\n".join(lines)


def prepare(args) -> int:
    name = args.name
    if datasets.is_procedural(name):
        _out(f"{name}: procedural, nothing to prepare")
        return 0
    root, source = _root(args)
    todo = [s for s in files.OFFICIAL_FILES[name]
            if root is None or files.check_file(s, root).state not in ("ok", "unknown checksum")]
    if not todo:
        _out(f"{name}: all files present and verified under {root}")
        return 0
    if root is None or args.no_download:
        if root is None:
            _out("no data root: set $DISENTANGLEMENT_LIB_DATA (or pass --root) to the folder that will hold the files")
        _out(f"{name}: to prepare by hand:")
        for spec in todo:
            _out(_instructions(name, spec, root))
        return 1
    root.mkdir(parents=True, exist_ok=True)
    missing = []
    for spec in todo:
        download = root / ".download" / (spec.download or Path(spec.path).name)
        download.parent.mkdir(parents=True, exist_ok=True)
        ok = False
        for url in spec.urls:
            _out(f"{name}: downloading {url}")
            try:
                _fetch(url, download)
            except Exception as e:  # network errors come in many types; try the next source
                _out(f"  failed: {type(e).__name__}: {e}")
                continue
            problem = (_verify(download, spec.download_sha256, spec.download_md5) if spec.download
                       else _verify(download, spec.sha256, spec.md5))
            if problem:
                _out(f"  checksum mismatch: {problem}; trying the next source")
                continue
            _install(spec, download, root)
            status = files.check_file(spec, root)
            if status.failed:
                _out(f"  installed file fails its check: {status.state} {status.detail}")
                continue
            _out(f"  installed {root / spec.path} ({status.state})")
            ok = True
            break
        download.unlink(missing_ok=True)
        if not ok:
            missing.append(spec)
    shutil.rmtree(root / ".download", ignore_errors=True)
    if missing:
        _out(f"{name}: could not download {len(missing)} file(s); to prepare by hand:")
        for spec in missing:
            _out(_instructions(name, spec, root))
        return 1
    return 0


def show(args) -> int:
    from gmgbench.harness.data.show import write_sheet

    root, _ = _root(args)
    ds = datasets.load(args.name, root)
    out = write_sheet(ds, args.out or f"{args.name}_samples.png", seed=args.seed)
    _out(f"wrote {out}: 2 rows of samples, then one row per factor ({', '.join(ds.factor_names)})")
    return 0
