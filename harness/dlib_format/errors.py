"""The error of the interop commands: one line naming the folder, file or signature at fault."""
from __future__ import annotations

from gmgbench.harness.errors import UserError

__all__ = ["DlibFormatError"]


class DlibFormatError(UserError):
    """A dlib model folder or TF-Hub module that gmgbench cannot read or write as asked."""
