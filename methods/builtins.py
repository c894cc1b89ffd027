"""The built-in methods, declared by ``module:Class`` path the way entry points declare a
plugin's: nothing here is imported until a method is asked for, and adding a built-in is
one line. :mod:`gmgbench.methods.registry` reads this table; the modules it names import nothing
from the registry.
"""
from __future__ import annotations

BUILTINS: dict[str, dict[str, str]] = {
    "objective": {
        "beta_vae": "gmgbench.methods.beta_vae:BetaVAE",
        "beta_tcvae": "gmgbench.methods.beta_tcvae:BetaTCVAE",
        "factor_vae": "gmgbench.methods.factor_vae:FactorVAE",
        "dip_vae_i": "gmgbench.methods.dip_vae:DIPVAEI",
        "dip_vae_ii": "gmgbench.methods.dip_vae:DIPVAEII",
        "annealed_vae": "gmgbench.methods.annealed_vae:AnnealedVAE",
    },
    "regulariser": {
        "hfs": "gmgbench.methods.regularisers.hfs:HFS",
        "jacobian": "gmgbench.methods.regularisers.jacobian:JacobianIsometry",
        "dst": "gmgbench.methods.regularisers.dst:Distortion",
        "gmg": "gmgbench.methods.regularisers.gmg:GromovMongeGap",
    },
}
