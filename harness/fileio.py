"""Reading and writing the harness's own files, one way each.

- :func:`load_yaml` / :func:`load_json`: a file's content, or one :class:`UserError` line
  naming the file (missing, unreadable, not valid YAML/JSON);
- :func:`atomic_write` (and ``_text``/``_json``): readers see the old file or the whole new
  one, never a part; the new file gets the mode ``open()`` would give it under the umask
  (0644 under 022), not ``mkstemp``'s 0600, so colleagues sharing a store can read it;
- :func:`file_lock`: an exclusive ``flock`` taken without waiting; the OS drops it when
  its process dies, so a crash leaves nothing to clean up.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from gmgbench.harness.errors import UserError

__all__ = ["load_yaml", "load_json", "atomic_write", "atomic_write_text", "atomic_write_json", "file_lock",
           "DiskFull", "NotWritable", "disk_error"]


def _load(path: str | Path, what: str, error: type[UserError], hint: str, parse: Callable[[str], Any],
          invalid: tuple[type[Exception], ...], describe: Callable[[Exception], str]) -> Any:
    path, hint = Path(path), f"; {hint}" if hint else ""
    if not path.is_file():
        raise error(f"{path}: {what} not found{hint}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({type(err).__name__}: {err}){hint}") from None
    try:
        return parse(data.decode())
    except (UnicodeDecodeError, *invalid) as err:
        raise error(f"{path}: {describe(err)}{hint}") from None


def load_yaml(path: str | Path, *, what: str = "file", error: type[UserError] = UserError, hint: str = "") -> Any:
    """The YAML document in ``path`` (plain data only, as ``safe_load`` reads it); ``hint``
    ends any error. A key given twice in one mapping is an error naming it and both lines:
    YAML itself would keep the last one without a word."""
    import yaml

    return _load(path, what, error, hint, lambda text: yaml.load(text, Loader=_unique_key_loader()),
                 (yaml.YAMLError, DuplicateKey), _describe_yaml_error)


def _describe_yaml_error(err: Exception) -> str:
    return str(err) if isinstance(err, DuplicateKey) else f"not valid YAML: {' '.join(str(err).split())}"


class DuplicateKey(ValueError):
    """A mapping of a YAML file gives one key twice."""


def _unique_key_loader():
    import yaml

    global _LOADER
    if _LOADER is None:
        class UniqueKeyLoader(yaml.SafeLoader):
            def construct_mapping(self, node, deep=False):
                if isinstance(node, yaml.MappingNode):
                    seen: dict[Any, int] = {}
                    for key_node, _ in node.value:
                        if key_node.tag == "tag:yaml.org,2002:merge":
                            continue
                        key = self.construct_object(key_node, deep=True)
                        try:
                            first = seen.setdefault(key, key_node.start_mark.line)
                        except TypeError:  # an unhashable key: the base class names that error
                            continue
                        if first != key_node.start_mark.line:
                            raise DuplicateKey(f"line {key_node.start_mark.line + 1}: key {key!r} is given twice "
                                               f"(also on line {first + 1}); keep one")
                return super().construct_mapping(node, deep=deep)

        _LOADER = UniqueKeyLoader
    return _LOADER


_LOADER = None


def load_json(path: str | Path, *, what: str = "file", error: type[UserError] = UserError, hint: str = "") -> Any:
    """The JSON document in ``path``; ``hint`` (what to do about it) ends any error."""
    return _load(path, what, error, hint, json.loads, (json.JSONDecodeError,), lambda err: f"corrupt JSON ({err})")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then ``os.replace`` it there.

    The temporary file is created by ``os.open(..., 0o666)``, so the umask alone decides the
    mode; it is flushed to disk before the rename and removed if anything fails. A full
    disk (or quota) is :class:`DiskFull`, one line naming ``path``, however the writer
    reported it (torch's zip writer turns it into a ``RuntimeError`` naming no file).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise disk_error(err, path) or err
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as err:
        raise disk_error(err, path) or err
    seen: list[OSError] = []
    try:
        with os.fdopen(fd, "wb") as f:
            write(_Watched(f, seen))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        full = next((disk_error(e, path) for e in [err, *seen] if isinstance(e, OSError) and disk_error(e, path)),
                    None)
        if full is not None:
            raise full from err
        raise


_FULL = (errno.ENOSPC, errno.EDQUOT)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


class DiskFull(UserError, OSError):
    """No space left (or quota exceeded) where a file was being written; nothing partial stays."""


class NotWritable(UserError, OSError):
    """A folder gmgbench must write to is read-only or not ours."""


def disk_error(err: OSError, path: str | Path) -> UserError | None:
    """One line for a full disk or a folder we may not write to, naming the file; else None."""
    where = err.filename or path
    if err.errno in _FULL:
        return DiskFull(f"{path}: no space left on device (errno {err.errno}, {os.strerror(err.errno)}); "
                        "not written, an older file of that name is unchanged: free space and rerun")
    if err.errno in _DENIED:
        return NotWritable(f"{where}: cannot write here ({os.strerror(err.errno)}); make it writable, or "
                           "write elsewhere (--results DIR, --root DIR or --project DIR)")
    return None


class _Watched:
    """A file that remembers the ``OSError`` its writes raised: torch's writer replaces it by
    a ``RuntimeError`` that names neither the file nor the cause."""

    def __init__(self, f: IO[bytes], seen: list[OSError]):
        self._f, self._seen = f, seen

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as err:
            self._seen.append(err)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[bool]:
    """Try to hold an exclusive lock on ``path`` (created if missing) for the block.

    Yields whether the lock was got: ``False`` means another process holds it; this call
    never waits.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
