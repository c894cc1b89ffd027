"""Regularisers added to any base objective (loss = base + λ·term); one module per method.

:mod:`gmgbench.methods.builtins` declares them. The geometric ones (``dst``, ``gmg``) share
:mod:`gmgbench.methods.regularisers.geometric`: which map they judge (encoder or decoder) and its
pairwise costs.
"""
