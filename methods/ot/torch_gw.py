"""A native torch entropic GW solver: log-stabilised Sinkhorn inside a linearisation loop.

The algorithm is ott-jax's ``GromovWasserstein(Sinkhorn())`` (Peyré, Cuturi & Solomon 2016):
from the product coupling, linearise the objective at the current coupling ``P``
(``L⊗P = separable terms − 2·C_X P C_Yᵀ``) and solve the entropic linear problem with cost
``L⊗P`` and the same ε, until the GW cost stops changing. Differences that matter:

- potentials are kept in the log domain divided by ε (``f/ε``), the steps themselves are
  cheap scaling updates on the stabilised kernel (see :func:`_sinkhorn`);
- potentials are warm-started across linearisations (the linear problems change little);
- batched over a leading dimension; convergence is read back to the host once per block of
  ``inner_iterations`` Sinkhorn steps and once per linearisation, never inside a block, so on
  a GPU the kernels queue without waiting.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional

import torch

from gmgbench.methods.ot.gw_output import GWOutput, finish
from gmgbench.methods.ot.gw_problem import GWProblem
from gmgbench.methods.ot.settings import GWSettings

__all__ = ["TorchGW"]


@dataclass(frozen=True)
class TorchGW(GWSettings):
    """Entropic GW solver in torch; the shared settings are documented on
    :class:`~gmgbench.methods.ot.settings.GWSettings`.

    Args:
      inner_iterations: Sinkhorn steps between two convergence checks (host syncs); 10, 15
        and 20 measured within noise of each other here, 5 was 1.4-1.6× slower.
      momentum: Sinkhorn over-relaxation ω in [1, 2); 1 (the default) is plain Sinkhorn.
        ω = 1.5 needs about a third of the steps from a cold start, but with warm-started
        linearisations it saved nothing here (docs/performance.md). A block whose error
        grows is redone with ω = 1; the fixed point, and so the coupling, is the same.
    """

    inner_iterations: int = 20
    momentum: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if self.max_iterations < 1 or self.min_iterations < 0 or self.sinkhorn_max_iterations < 1 or self.inner_iterations < 1:
            raise ValueError(f"TorchGW: iteration counts must be positive, got {self}")
        if not 1.0 <= self.momentum < 2.0:
            raise ValueError(f"TorchGW: momentum (Sinkhorn over-relaxation ω) must be in [1, 2), got {self.momentum}")

    def __call__(self, prob: GWProblem, init: torch.Tensor | None = None) -> GWOutput:
        """Solve ``prob``; ``init`` is the coupling the first linearisation is taken at
        (default: the product coupling ``a bᵀ``, as ott-jax), e.g. ``prob.identity_coupling()``."""
        eps = self.absolute_epsilon(prob)
        with torch.no_grad():
            coupling, trace, ok, n_outer = self._solve(prob, eps, init)
        return finish(prob, coupling, trace, ok, n_outer, eps, self.marginal_tolerance)

    def _solve(self, prob: GWProblem, eps: torch.Tensor, init: torch.Tensor | None):
        cx, cy, scale = prob.normalised()
        squeeze = not prob.is_batched
        if squeeze:
            cx, cy, scale = cx[None], cy[None], scale[None]
        bsz, n, m = cx.shape[0], cx.shape[-1], cy.shape[-1]
        eps = eps.reshape(-1) / scale
        if eps.numel() not in (1, bsz) or not bool((eps > 0).all()):
            raise ValueError(f"TorchGW: epsilon must be positive, scalar or one per problem, got {self.given_epsilon}")
        if init is not None:
            if init.shape != prob.cost_x.shape[:-1] + (m,):
                raise ValueError(f"TorchGW: init must be a coupling of shape {tuple(prob.cost_x.shape[:-1]) + (m,)}, got {tuple(init.shape)}")
            init = init.detach().to(cx.dtype).reshape(bsz, n, m)
        coupling, trace, ok, n_outer = _gw_loop(
            cx, cy, eps.expand(bsz).contiguous(), float(self.threshold), int(self.min_iterations),
            int(self.max_iterations), float(self.sinkhorn_threshold), int(self.sinkhorn_max_iterations),
            int(self.inner_iterations), float(self.momentum), init)
        if squeeze:
            coupling, trace, ok = coupling[0], trace[:, 0], ok[0]
        return coupling, trace, ok, n_outer


# The whole solve is one TorchScript function (below): at n = 64 a Sinkhorn step is four
# tiny kernels, and eager Python's per-op overhead, not arithmetic, set the solve's time
# (docs/performance.md). Every function here is plain, typed torch so that eager mode runs
# the same code when scripting is unavailable. The host reads (``.item()``) happen once per
# block of ``inner`` Sinkhorn steps and once per linearisation, as before; on a GPU the
# kernels of a block still queue without waiting.

def _gw_loop(cx: torch.Tensor, cy: torch.Tensor, eps: torch.Tensor, threshold: float, min_iterations: int,
             max_iterations: int, sinkhorn_threshold: float, sinkhorn_max_iterations: int, inner: int,
             momentum: float, init: Optional[torch.Tensor] = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Linearisation loop on normalised costs ``[B, n, n]``, ``[B, m, m]`` with ε ``[B]``,
    from the coupling ``init`` ``[B, n, m]`` (default: the product coupling).

    Returns ``(coupling [B, n, m], trace [iterations, B], ok [B], iterations)``.
    """
    bsz, n, m = cx.shape[0], cx.shape[-1], cy.shape[-1]
    inv_eps = (1.0 / eps)[:, None, None]
    eps_floor = eps * math.log(n * m)
    log_a, log_b = -math.log(n), -math.log(m)
    cyt = cy.transpose(-1, -2)
    sx_sq, sy_sq = cx * cx, cy * cy

    if init is None:
        coupling = torch.full((bsz, n, m), 1.0 / (n * m), dtype=cx.dtype, device=cx.device)
    else:
        coupling = init
    f = torch.full((bsz, n, 1), log_a, dtype=cx.dtype, device=cx.device)  # f/ε + log a
    g = torch.full((bsz, 1, m), log_b, dtype=cx.dtype, device=cx.device)  # g/ε + log b
    a = torch.full((bsz, n, 1), 1.0 / n, dtype=cx.dtype, device=cx.device)
    b = torch.full((bsz, m, 1), 1.0 / m, dtype=cx.dtype, device=cx.device)
    trace: list[torch.Tensor] = []
    sink_ok = torch.ones(bsz, dtype=torch.bool, device=cx.device)
    prev = torch.zeros(bsz, dtype=cx.dtype, device=cx.device)
    n_outer = 0
    outer_done = False
    q = cx @ coupling @ cyt
    for it in range(max_iterations):
        # Log-kernel of the linearised cost: only the −2·C_X P C_Yᵀ part; the separable
        # marginal terms shift the potentials, not the coupling.
        logk = (2.0 * q) * inv_eps
        f, g, coupling, err = _sinkhorn(logk, f, g, a, log_a, log_b, b, sinkhorn_threshold,
                                        sinkhorn_max_iterations, inner, momentum, it == 0)
        sink_ok = sink_ok & (err <= sinkhorn_threshold)
        n_outer = it + 1
        p1, p2 = coupling.sum(-1, keepdim=True), coupling.sum(-2, keepdim=True)
        q = cx @ coupling @ cyt
        cur = 0.5 * ((sx_sq @ p1) * p1).sum((-1, -2)) + 0.5 * ((p2 @ sy_sq) * p2).sum((-1, -2)) \
            - (q * coupling).sum((-1, -2))
        trace.append(cur)
        if n_outer >= max(min_iterations, 2):
            # Relative to the cost plus the entropic term's scale ε·log(nm), as ott-jax's
            # criterion (on the regularised linear cost) effectively is; without the floor an
            # isometry, whose cost tends to 0, would never stop.
            if bool(((cur - prev).abs() <= threshold * (cur.abs() + eps_floor)).all()):
                outer_done = True
                break
        prev = cur
    ok = sink_ok & outer_done
    return coupling, torch.stack(trace), ok, n_outer


def _kernel(logits: torch.Tensor) -> torch.Tensor:
    """``exp(logits)`` with entries below ~1e-35 (float32) set to exactly 0: subnormal floats
    make CPU matrix products many times slower, and such entries carry no mass."""
    floor = -80.0 if logits.dtype != torch.float64 else -700.0
    return torch.exp(logits).masked_fill_(logits < floor, 0.0)


def _log_sweep(logk: torch.Tensor, f: torch.Tensor, g: torch.Tensor, log_a: float, log_b: float,
               steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    for _ in range(steps):
        f = log_a - torch.logsumexp(logk + g, dim=-1, keepdim=True)
        g = log_b - torch.logsumexp(logk + f, dim=-2, keepdim=True)
    return f, g


def _scaling_block(kern: torch.Tensor, kt: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
                   a: torch.Tensor, b: torch.Tensor, inner: int, omega: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``inner`` scaling steps, then the error ``[B]`` and ``stats = [worst error, min u,
    max u, min v, max v]`` (one small tensor, read with a single host sync)."""
    for _ in range(inner):
        if omega == 1.0:
            u = a / torch.bmm(kern, v)
            v = b / torch.bmm(kt, u)
        else:
            u = u.pow(1.0 - omega) * (a / torch.bmm(kern, v)).pow(omega)
            v = v.pow(1.0 - omega) * (b / torch.bmm(kt, u)).pow(omega)
    # After a plain step the column marginals are exact, so the rows carry the whole error;
    # over-relaxed steps leave both off.
    err = (u * torch.bmm(kern, v) - a).abs().sum((-1, -2))
    if omega != 1.0:
        err = err + (v * torch.bmm(kt, u) - b).abs().sum((-1, -2))
    stats = torch.stack([err.max(), u.amin(), u.amax(), v.amin(), v.amax()])
    return u, v, err, stats


def _kernels(logk: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The stabilised kernel ``exp(logk + f + g)`` and its transpose, made contiguous once for
    the many ``Kᵀ u`` products that follow."""
    kern = _kernel(logk + f + g)
    return kern, kern.transpose(-1, -2).contiguous()


def _absorb(f: torch.Tensor, g: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold the scalings ``u [B, n, 1]``, ``v [B, m, 1]`` into the log-potentials."""
    return f + u.log(), g + v.log().transpose(-1, -2)


def _sinkhorn(logk: torch.Tensor, f: torch.Tensor, g: torch.Tensor, a: torch.Tensor, log_a: float, log_b: float,
              b: torch.Tensor, threshold: float, max_iterations: int, inner: int, omega: float, cold: bool
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entropic OT with log-kernel ``logk`` ``[B, n, m]`` from warm potentials ``f [B, n, 1]``,
    ``g [B, 1, m]`` (divided by ε, marginals' logs included).

    Log-stabilised scaling (Schmitzer 2019): one log-domain sweep makes the kernel
    ``K = exp(logk + f + g)`` a near-coupling with entries ≤ 1/m, then the cheap scaling
    updates ``u = a / K v``, ``v = b / Kᵀ u`` run in blocks of ``inner`` steps; scalings that
    grow past e^±10 are absorbed into f, g. A block that under- or overflows is redone in
    the log domain. Returns ``(f, g, coupling, row-marginal L1 error [B])``.
    """
    if cold:
        f, g = _log_sweep(logk, f, g, log_a, log_b, 1)
    # Warm potentials already make the new kernel a near-coupling; if they do not, the block
    # under/overflows and is redone in the log domain below.
    kern, kt = _kernels(logk, f, g)
    u = torch.ones_like(a)
    v = torch.ones_like(b)
    err = torch.full(a.shape[:1], float("inf"), dtype=a.dtype, device=a.device)
    prev_err = float("inf")
    hi, lo = math.exp(10.0), math.exp(-10.0)
    for _ in range(0, max_iterations, inner):
        u0, v0 = u, v
        u, v, err, stats = _scaling_block(kern, kt, u, v, a, b, inner, omega)
        # The one host sync per block: convergence, stability and progress together.
        host: list[float] = stats.tolist()
        worst = host[0]
        # A scaling of 0 or inf (float32 kernel under/overflow) leaves no finite log-potential.
        finite = math.isfinite(worst) and min(host[1], host[3]) > 0.0 and max(host[2], host[4]) < math.inf
        # Scalings beyond e^±10 are folded into the log-potentials and the kernel rebuilt,
        # which keeps the float32 kernel's entries between underflow and 1.
        stable = min(host[1], host[3]) >= lo and max(host[2], host[4]) <= hi
        done = worst <= threshold
        if not finite or worst > 2 * prev_err:
            # Over-relaxation diverging, or the float32 kernel under/overflowing: redo this
            # block from its start in the log domain, and go on without over-relaxation.
            omega = 1.0
            f, g = _log_sweep(logk, *_absorb(f, g, u0, v0), log_a, log_b, inner)
            kern, kt = _kernels(logk, f, g)
            u, v = torch.ones_like(a), torch.ones_like(b)
            err = (kern.sum(-1, keepdim=True) - a).abs().sum((-1, -2))
            prev_err = err.max().item()
            if prev_err <= threshold:
                break
            continue
        prev_err = worst
        if done:
            break
        if not stable:
            f, g = _absorb(f, g, u, v)
            kern, kt = _kernels(logk, f, g)
            u, v = torch.ones_like(a), torch.ones_like(b)
    f, g = _absorb(f, g, u, v)
    coupling = u * kern * v.transpose(-1, -2)
    return f, g, coupling, err


# torch 2.13 marks torch.jit.script deprecated; torch.compile would need a C++ toolchain and
# seconds of compilation per shape, so scripting stays until it is removed.
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _gw_loop = torch.jit.script(_gw_loop)  # noqa: F811
except Exception:  # pragma: no cover - depends on the torch build
    pass
