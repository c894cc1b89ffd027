"""Small, fast illustrations of the methods (run as ``python -m gmgbench.methods.toys.<name>``)."""
