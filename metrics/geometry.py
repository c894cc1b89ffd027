"""Geometry: the trained model's distortion (DST) and Gromov-Monge gap (GMG) on held-out batches.

The GMG paper claims the regulariser makes the encoder and decoder preserve geometric features;
this measures it instead of assuming it. For each of ``num_batches`` fixed batches of
``batch_size`` observations (drawn from the metric's own ``RandomState(seed)``, so every model
is judged on the same observations), for each side and each cost (``l2sq``, ``scl2sq``,
``cos``, :mod:`methods.ot.costs`):

- encoder: the map x ↦ z (observation, flattened → posterior mean);
- decoder: the map z ↦ x̂ (posterior mean → decoded image, the Bernoulli means), which needs the
  model's decoder: the representation function carries it as its ``decode`` attribute (codes
  ``(B, D)`` → images ``(B, H, W, C)``; :func:`harness.train.representation_function` sets it).
  Without it the decoder keys are NaN.

``DST = (1/n²) Σ ½ (C_X − C_Y)²`` is the quadratic cost of the map's own coupling ``I/n``, and
``GMG = DST − GW`` with GW taken as the lowest quadratic cost POT's exact (non-entropic)
conditional-gradient GW solver finds from two starts: the product coupling and the map's own
coupling. The second start can only go down from DST, so GMG ≥ 0, and it is 0 exactly when
neither start finds a coupling cheaper than the map's own; since the solves are local it is a
lower bound on the true gap. An exact solver (not the training's entropic one) keeps the metric
free of ε and independent of the regulariser it judges. Values are means over the batches.

Codes are computed once per batch and shared by every cost and both sides; decoding is once per
batch too. Result keys ``{enc,dec}_{cost}_{dst,gmg}``.
"""
from __future__ import annotations

import numpy as np
import torch

from methods.ot.costs import COSTS, pairwise_cost
from methods.ot.gw_problem import distortion, quadratic_cost
from metrics import sampling
from metrics.validation import check_random_state

__all__ = ["compute_geometry", "geometry_from_pairs", "map_gap", "RESULT_KEYS"]

SIDES = ("enc", "dec")
RESULT_KEYS = tuple(f"{side}_{cost}_{q}" for side in SIDES for cost in COSTS for q in ("dst", "gmg"))


def map_gap(source: np.ndarray, image: np.ndarray, cost: str) -> tuple[float, float]:
    """``(DST, GMG)`` of the map ``source[i] ↦ image[i]`` (rows flattened) under ``cost``."""
    import ot  # POT; imported here so that importing metrics stays light

    cx = pairwise_cost(torch.as_tensor(np.asarray(source, np.float64).reshape(len(source), -1)), cost)
    cy = pairwise_cost(torch.as_tensor(np.asarray(image, np.float64).reshape(len(image), -1)), cost)
    dst = float(distortion(cx, cy))
    n = cx.shape[0]
    p = np.full(n, 1.0 / n)
    best = dst
    for start in (np.outer(p, p), np.eye(n) / n):
        coupling = ot.gromov.gromov_wasserstein(cx.numpy(), cy.numpy(), p, p, "square_loss", G0=start)
        best = min(best, float(quadratic_cost(cx, cy, torch.as_tensor(coupling))))
    return dst, max(dst - best, 0.0)


def geometry_from_pairs(batches, costs=COSTS) -> dict[str, float]:
    """Mean ``{side}_{cost}_{dst,gmg}`` over ``batches``: an iterable of
    ``{side: (source, image)}`` dicts, side in ``("enc", "dec")``."""
    sums: dict[str, list[float]] = {}
    for pairs in batches:
        for side, (src, img) in pairs.items():
            for cost in costs:
                dst, gmg = map_gap(src, img, cost)
                sums.setdefault(f"{side}_{cost}_dst", []).append(dst)
                sums.setdefault(f"{side}_{cost}_gmg", []).append(gmg)
    return {k: float(np.mean(v)) for k, v in sums.items()}


def compute_geometry(ground_truth_data, representation_function, random_state, artifact_dir=None,
                     num_batches=8, batch_size=64):
    """DST and GMG of the encoder and decoder on ``num_batches`` held-out batches; see the module."""
    del artifact_dir
    check_random_state(random_state)
    num_batches, batch_size = int(num_batches), int(batch_size)
    if num_batches < 1 or batch_size < 2:
        raise ValueError(f"num_batches must be >= 1 and batch_size >= 2; got {num_batches} and {batch_size}")
    decode = getattr(representation_function, "decode", None)
    batches = []
    for _ in range(num_batches):
        _, obs = ground_truth_data.sample(batch_size, random_state)
        codes = sampling.encode(representation_function, obs)
        pairs = {"enc": (obs, codes)}
        if decode is not None:
            pairs["dec"] = (codes, np.asarray(decode(codes)))
        batches.append(pairs)
    scores = geometry_from_pairs(batches)
    return {k: scores.get(k, float("nan")) for k in RESULT_KEYS}
