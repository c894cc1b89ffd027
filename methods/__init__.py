"""Architectures, objectives, regularisers and OT solvers; see :mod:`gmgbench.methods.registry`."""
