"""Architectures, objectives, regularisers and OT solvers; see :mod:`methods.registry`."""
