"""Shared set-up of the metric tests: helper module on sys.path, single-threaded torch."""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
