"""gmgbench's harness: study specs, datasets, training, executors, results, leaderboards."""
__version__ = "0.1.0"
