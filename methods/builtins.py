"""Importing this module registers every built-in method (one module per method)."""
from methods import beta_vae  # noqa: F401
