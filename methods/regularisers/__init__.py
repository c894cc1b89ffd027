"""Regularisers added to any base objective (loss = base + λ·term); one module per method.

Importing :mod:`methods.builtins` registers them. The geometric ones (``dst``, ``gmg``) share
:mod:`methods.regularisers.map_pairs`: which map they judge (encoder or decoder) and its
pairwise costs.
"""
