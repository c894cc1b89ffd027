"""The one kind of error a user can fix: :class:`UserError`.

Every harness error about bad input — a spec typo, a missing or corrupt file, an unknown
name, a result that already exists, a refusing cluster — subclasses it, and ``gmgbench``
catches it in one place (:func:`gmgbench.harness.cli.main`): one line naming the file or key, exit
code ``exit_code`` (1), the traceback only with ``--debug``. Anything else is a bug and
keeps its traceback.

:func:`check_keys` is the one unknown-key check (one did-you-mean policy: the closest
valid name by :mod:`difflib`, if it is close enough).

``methods`` and ``metrics`` never import the harness, so their own errors (``PluginError``,
``KeyError`` for an unknown name) are turned into a ``UserError`` where the harness hands
them user input: the spec loader, ``gmgbench methods --plugin``, ``gmgbench evaluate
--metrics``.
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["UserError", "UsageError", "did_you_mean", "check_keys"]


class UserError(Exception):
    """Bad input the user can fix; the message is one line naming the file or key."""

    exit_code = 1


class UsageError(UserError):
    """The command line itself is incomplete (argparse's own exit code)."""

    exit_code = 2


def did_you_mean(name: object, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``valid`` to ``name``, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), sorted(valid), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(at: str, got: Iterable[str], valid: Iterable[str], *,
               error: type[UserError] = UserError, what: str = "key") -> None:
    """Raise ``error("<at><key>: unknown key (did you mean ...?); valid keys: ...")`` for the
    first key of ``got`` not in ``valid``; ``at`` names where the keys are, e.g.
    ``"studies/x.yaml: train."``."""
    valid = sorted(valid)
    for key in got:
        if key not in valid:
            raise error(f"{at}{key}: unknown {what}{did_you_mean(key, valid)}; valid {what}s: {', '.join(valid)}")
