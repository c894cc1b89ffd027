"""The one kind of error a user can fix: :class:`UserError`.

Every harness error about bad input — a spec typo, a missing or corrupt file, an unknown
name, a result that already exists, a refusing cluster — subclasses it, and ``gmgbench``
catches it in one place (:func:`harness.cli.main`): one line naming the file or key, exit
code ``exit_code`` (1), the traceback only with ``--debug``. Anything else is a bug and
keeps its traceback.

``methods`` and ``metrics`` never import the harness, so their own errors (``PluginError``,
``KeyError`` for an unknown name) are turned into a ``UserError`` where the harness hands
them user input: the spec loader, ``gmgbench methods --plugin``, ``gmgbench evaluate
--metrics``.
"""
from __future__ import annotations

__all__ = ["UserError", "UsageError"]


class UserError(Exception):
    """Bad input the user can fix; the message is one line naming the file or key."""

    exit_code = 1


class UsageError(UserError):
    """The command line itself is incomplete (argparse's own exit code)."""

    exit_code = 2
