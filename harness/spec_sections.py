"""Who checks which section of a study spec: each owner's check, registered in order.

:mod:`gmgbench.harness.spec` knows the study's own shape and calls the owners of the other
sections through :data:`gmgbench.harness.spec.SECTIONS`; it imports none of them, because
they (the leaderboard, the Slurm launcher, the dlib importer) sit above it and import it.
This module sits above both and fills the registry once. ``gmgbench.harness`` imports it,
so the checks are in place for whoever loads a spec: the command line, a library user's
``load_spec()``, a worker process.

The order is the order of the errors: a spec with several mistakes reports the first.
"""
from __future__ import annotations

from gmgbench.harness import callbacks
from gmgbench.harness.dlib_format import entries
from gmgbench.harness.leaderboard import options
from gmgbench.harness.slurm import profile
from gmgbench.harness.spec import SECTIONS

__all__ = ["OWNERS"]

OWNERS = {
    "callbacks": callbacks.check_section,
    "external": entries.check_section,
    "resources": profile.check_section,
    "leaderboard": options.check_section,
}
for _key, _check in OWNERS.items():
    SECTIONS.register(_key, _check)
