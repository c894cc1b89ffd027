"""The reference backend: ott-jax 0.6's ``GromovWasserstein(Sinkhorn())``.

Torch tensors cross to JAX and back through DLPack (zero-copy). One jitted function per
(shape, dtype, solver settings); ε is a traced argument, so a training loop whose ε changes
every step (ε = ε0·mean(C_X)·mean(C_Y)) compiles once. ott-jax's ``GromovWasserstein`` keeps
``epsilon`` in its static pytree data, so the solver object is built inside the jitted
function from the traced value rather than passed in.
"""
from __future__ import annotations

import os

# Before the first jax import anywhere: JAX must not reserve most of the GPU's memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

from dataclasses import dataclass, fields  # noqa: E402
from functools import lru_cache  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gmgbench.methods.ot.gw_output import GWOutput, finish  # noqa: E402
from gmgbench.methods.ot.gw_problem import GWProblem  # noqa: E402
from gmgbench.methods.ot.settings import GWSettings  # noqa: E402

__all__ = ["OttGW", "trace_count"]

_TRACES = [0]


def trace_count() -> int:
    """How many times the solve has been traced (compiled) in this process; for tests."""
    return _TRACES[0]


@lru_cache(maxsize=None)
def _jitted(threshold, min_iterations, max_iterations, sinkhorn_threshold, sinkhorn_max_iterations, warm_start, batched):
    import jax
    import jax.numpy as jnp
    from ott.geometry import geometry
    from ott.problems.quadratic import quadratic_problem
    from ott.solvers.linear import sinkhorn
    from ott.solvers.quadratic import gromov_wasserstein

    def solve(cx, cy, eps):
        _TRACES[0] += 1
        prob = quadratic_problem.QuadraticProblem(geometry.Geometry(cost_matrix=cx), geometry.Geometry(cost_matrix=cy))
        solver = gromov_wasserstein.GromovWasserstein(
            sinkhorn.Sinkhorn(threshold=sinkhorn_threshold, max_iterations=sinkhorn_max_iterations),
            epsilon=eps,
            threshold=threshold,
            min_iterations=min_iterations,
            max_iterations=max_iterations,
            warm_start=warm_start,
        )
        out = solver(prob)
        return out.matrix, out.costs, out.converged, jnp.sum(out.costs != -1)

    return jax.jit(jax.vmap(solve) if batched else solve)


def _to_jax(t: torch.Tensor):
    import jax.dlpack

    return jax.dlpack.from_dlpack(t.detach().contiguous())


@dataclass(frozen=True)
class OttGW(GWSettings):
    """Entropic GW with ott-jax; the shared settings are documented on
    :class:`~gmgbench.methods.ot.settings.GWSettings`, with the same defaults as :class:`~gmgbench.methods.ot.torch_gw.TorchGW`.

    ``warm_start`` (default True) reuses the Sinkhorn potentials between linearisations, as the
    torch backend does; ott-jax's own default is False.
    """

    warm_start: bool = True

    def __call__(self, prob: GWProblem, init: torch.Tensor | None = None) -> GWOutput:
        if init is not None:
            raise ValueError("OttGW: a start coupling (init) is supported by the torch backend only")
        cx, cy, scale = prob.normalised()
        eps = abs_eps = self.absolute_epsilon(prob)
        if prob.is_batched:
            eps = eps.reshape(-1).expand(cx.shape[0])
        elif eps.numel() != 1:
            raise ValueError(f"OttGW: epsilon must be a scalar for an unbatched problem, got shape {tuple(eps.shape)}")
        else:
            eps = eps.reshape(())
        if not bool((eps > 0).all()):
            raise ValueError(f"OttGW: epsilon must be positive, got {self.given_epsilon}")
        # Not asdict(): it deep-copies ε, a tensor, on every solve.
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("epsilon", "epsilon0", "marginal_tolerance")}
        fn = _jitted(**settings, batched=prob.is_batched)
        # ott-jax solves the normalised costs, so it gets ε / (mean(C_X)·mean(C_Y)) (about ε0
        # itself when epsilon0 was given), in its own convention, which is ours (POT's ε / 2).
        matrix, costs, ok, n_iters = fn(_to_jax(cx), _to_jax(cy), _to_jax((eps / scale).contiguous()))
        # Without jax_enable_x64, JAX computes float64 inputs in float32: hand back the caller's dtype.
        coupling = torch.from_dlpack(matrix).to(device=cx.device, dtype=cx.dtype)
        n_outer = int(np.asarray(n_iters).max())
        trace = torch.from_dlpack(costs)[..., :n_outer].to(cx.dtype)
        if prob.is_batched:
            trace = trace.transpose(0, 1)
        ok = torch.as_tensor(np.array(ok), device=cx.device)
        return finish(prob, coupling, trace, ok, n_outer, abs_eps, self.marginal_tolerance)
