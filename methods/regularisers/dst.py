"""DST: the distortion of the encoder or decoder on the batch, the geometric baseline of GMG.

``DST = (1/n²) Σ_ij ½ (C_X[i,j] − C_Y[T(i),T(j)])²`` with the chosen cost on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass

from gmgbench.methods.base import ForwardPass, LossAndLogs, Regulariser
from gmgbench.methods.ot.gw_problem import distortion
from gmgbench.methods.regularisers.geometric import GeometricConfig, cost_matrices

__all__ = ["Distortion"]


class Distortion(Regulariser):
    name = "dst"

    @dataclass(frozen=True)
    class Config(GeometricConfig):
        pass

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        cx, cy = cost_matrices(out, self.cfg)
        dst = distortion(cx, cy)
        return dst, {"dst": dst.item()}
