"""gmgbench's harness: study specs, datasets, training, executors, results, leaderboards."""
__version__ = "0.1.0"

# Each section of a study spec is checked by its owner: register the owners before anyone loads one.
from gmgbench.harness import spec_sections  # noqa: E402,F401
