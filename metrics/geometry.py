"""Geometry: the trained model's distortion (DST) and Gromov-Monge gap (GMG) on held-out batches.

The GMG paper claims the regulariser makes the encoder and decoder preserve geometric features;
this measures it instead of assuming it, in a way a model cannot game by shrinking its scale,
collapsing its posterior or shifting every code by a shared offset. For each of
``num_batches`` fixed batches of ``batch_size`` observations (drawn from the metric's own
``RandomState(seed)``, so every model is judged on the same observations), for each side and
each cost:

- encoder: the map x ↦ z (observation, flattened → posterior mean);
- decoder: the map z ↦ x̂ (posterior mean → decoded image, the Bernoulli means), which needs the
  model's decoder: the representation function carries it as its ``decode`` attribute (codes
  ``(B, D)`` → images ``(B, H, W, C)``; :func:`gmgbench.harness.evaluation.representation_function` sets it).
  Without it the decoder keys are NaN.

Costs: ``l2sq``, ``scl2sq``, ``cos`` of :mod:`gmgbench.methods.ot.costs`, and ``ccos``: ``1 − cos`` of
the points centred at their batch mean, on both sides of the map. A shared offset of every code
shrinks the raw cosine cost between codes without preserving anything; the centred one does not
see it.

Per batch: ``DST = (1/n²) Σ ½ (C_X − C_Y)²``, the quadratic cost of the map's own coupling
``I/n``, and ``GW`` the lowest quadratic cost POT's exact (non-entropic) conditional-gradient
solver finds from several starts — the product coupling, the map's own coupling and
``random_starts`` random permutations — with DST itself among the candidates. So
``GMG = DST − GW ≥ 0`` by construction (no clipping), 0 when no start beats the map's own
coupling, and a lower bound of the true gap (the solves are local). No ε, not the training
solver: every regulariser is judged alike.

Keys ``{enc,dec}_{cost}_{q}``, means over the batches:

- ``dst``, ``gmg``: the raw values (their scale is the data's and the cost's);
- ``gmg_rel``: ``GMG / DST`` per batch (scale-free, in [0, 1]: 0 = the map's own coupling is
  the best found, 1 = an isometric copy scrambled). A batch whose DST is below
  ``1e-10·mean(C_X²)`` is an isometry to float precision and counts 0;
- ``gmg_rel_ci``: the half-width of a 95 % t-interval of ``gmg_rel`` over the batches (NaN
  with one batch).

And ``active_dims``: latent dimensions whose posterior mean varies over the held-out points
(variance > ``active_variance``, 0.01 as Burda et al.'s active units); ``collapsed``: 1 when
fewer than ``min_active_dims`` are active. A collapsed code's gap keys (``gmg``, ``gmg_rel``,
``gmg_rel_ci``, both sides) are NaN — its geometry is that of a point, and a near-zero gap would
read as perfect preservation; the ``dst`` keys stay (a collapsed code distorts).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from gmgbench.methods.ot.costs import pairwise_cost
from gmgbench.methods.ot.gw_problem import distortion, quadratic_cost
from gmgbench.metrics import sampling
from gmgbench.metrics.validation import check_random_state

__all__ = ["compute_geometry", "geometry_from_pairs", "map_gap", "RESULT_KEYS", "COSTS", "QUANTITIES"]

SIDES = ("enc", "dec")
COSTS = ("l2sq", "scl2sq", "cos", "ccos")
QUANTITIES = ("dst", "gmg", "gmg_rel", "gmg_rel_ci")
GAP_KEYS = ("gmg", "gmg_rel", "gmg_rel_ci")
RESULT_KEYS = tuple(f"{side}_{cost}_{q}" for side in SIDES for cost in COSTS for q in QUANTITIES) + (
    "active_dims", "collapsed")
# DST below this fraction of the source costs' second moment is round-off: an isometry.
ISOMETRY_FLOOR = 1e-10


def _costs(points: np.ndarray, cost: str) -> torch.Tensor:
    u = torch.as_tensor(np.asarray(points, np.float64).reshape(len(points), -1))
    if cost == "ccos":
        return pairwise_cost(u - u.mean(0, keepdim=True), "cos")
    return pairwise_cost(u, cost)


def map_gap(source: np.ndarray, image: np.ndarray, cost: str, random_starts: int = 2,
            random_state: np.random.RandomState | None = None) -> tuple[float, float, float]:
    """``(DST, GMG, GMG/DST)`` of the map ``source[i] ↦ image[i]`` (rows flattened) under
    ``cost`` (``l2sq``, ``scl2sq``, ``cos``, ``ccos``); see the module docstring."""
    import ot  # POT; imported here so that importing metrics stays light

    cx, cy = _costs(source, cost), _costs(image, cost)
    dst = float(distortion(cx, cy))
    n = cx.shape[0]
    p = np.full(n, 1.0 / n)
    rs = random_state if random_state is not None else np.random.RandomState(0)
    starts = [np.outer(p, p), np.eye(n) / n] + [np.eye(n)[rs.permutation(n)] / n for _ in range(random_starts)]
    best = dst
    for start in starts:
        coupling = ot.gromov.gromov_wasserstein(cx.numpy(), cy.numpy(), p, p, "square_loss", G0=start)
        best = min(best, float(quadratic_cost(cx, cy, torch.as_tensor(coupling))))
    gap = dst - best
    if dst <= ISOMETRY_FLOOR * float(cx.pow(2).mean()):
        return dst, gap, 0.0
    return dst, gap, gap / dst


def _interval(values: list[float]) -> float:
    """Half-width of the 95 % t-interval of the mean (NaN for fewer than two values)."""
    from scipy import stats

    xs = np.asarray([v for v in values if math.isfinite(v)], float)
    if len(xs) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(xs) - 1) * xs.std(ddof=1) / math.sqrt(len(xs)))


def geometry_from_pairs(batches, costs=COSTS, random_starts: int = 2, seed: int = 0) -> dict[str, float]:
    """Mean ``{side}_{cost}_{dst,gmg,gmg_rel}`` and ``gmg_rel_ci`` over ``batches``: an
    iterable of ``{side: (source, image)}`` dicts, side in ``("enc", "dec")``. The random
    starts come from ``RandomState(seed)``."""
    rs = np.random.RandomState(seed)
    per: dict[str, list[float]] = {}
    for pairs in batches:
        for side, (src, img) in pairs.items():
            for cost in costs:
                for q, v in zip(("dst", "gmg", "gmg_rel"), map_gap(src, img, cost, random_starts, rs)):
                    per.setdefault(f"{side}_{cost}_{q}", []).append(v)
    out = {k: float(np.mean(v)) for k, v in per.items()}
    out.update({k + "_ci": _interval(v) for k, v in per.items() if k.endswith("_gmg_rel")})
    return out


def active_dims(codes: np.ndarray, active_variance: float = 0.01) -> int:
    """Latent dimensions whose value varies over the points (variance > ``active_variance``)."""
    return int((np.asarray(codes, np.float64).var(0) > active_variance).sum())


def compute_geometry(ground_truth_data, representation_function, random_state, artifact_dir=None,
                     num_batches=8, batch_size=64, random_starts=2, min_active_dims=2, active_variance=0.01):
    """DST and GMG of the encoder and decoder on ``num_batches`` held-out batches; see the module."""
    del artifact_dir
    check_random_state(random_state)
    num_batches, batch_size = int(num_batches), int(batch_size)
    if num_batches < 1 or batch_size < 2:
        raise ValueError(f"num_batches must be >= 1 and batch_size >= 2; got {num_batches} and {batch_size}")
    if int(random_starts) < 0 or int(min_active_dims) < 0:
        raise ValueError(f"random_starts and min_active_dims must be >= 0; got {random_starts} and {min_active_dims}")
    decode = getattr(representation_function, "decode", None)
    batches, all_codes = [], []
    for _ in range(num_batches):
        _, obs = ground_truth_data.sample(batch_size, random_state)
        codes = sampling.encode(representation_function, obs)
        all_codes.append(codes)
        pairs = {"enc": (obs, codes)}
        if decode is not None:
            pairs["dec"] = (codes, np.asarray(decode(codes)))
        batches.append(pairs)
    active = active_dims(np.concatenate(all_codes), float(active_variance))
    collapsed = active < int(min_active_dims)
    # The random starts get their own stream: the batches drawn above stay those of every model.
    scores = geometry_from_pairs(batches, random_starts=int(random_starts), seed=int(random_state.randint(2**31 - 1)))
    out = {k: scores.get(k, float("nan")) for k in RESULT_KEYS}
    if collapsed:
        out.update({k: float("nan") for k in out if k.rsplit("_", 1)[-1] in ("gmg", "ci", "rel")})
    out["active_dims"], out["collapsed"] = float(active), float(collapsed)
    return out
