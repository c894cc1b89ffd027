"""Small, fast illustrations of the methods (run as ``python -m methods.toys.<name>``)."""
