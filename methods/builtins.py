"""The built-in methods, declared by ``module:Class`` path the way entry points declare a
plugin's: nothing here is imported until a method is asked for, and adding a built-in is
one line. :mod:`methods.registry` reads this table; the modules it names import nothing
from the registry.
"""
from __future__ import annotations

BUILTINS: dict[str, dict[str, str]] = {
    "objective": {
        "beta_vae": "methods.beta_vae:BetaVAE",
        "beta_tcvae": "methods.beta_tcvae:BetaTCVAE",
        "factor_vae": "methods.factor_vae:FactorVAE",
        "dip_vae_i": "methods.dip_vae:DIPVAEI",
        "dip_vae_ii": "methods.dip_vae:DIPVAEII",
        "annealed_vae": "methods.annealed_vae:AnnealedVAE",
    },
    "regulariser": {
        "hfs": "methods.regularisers.hfs:HFS",
        "jacobian": "methods.regularisers.jacobian:JacobianIsometry",
        "dst": "methods.regularisers.dst:Distortion",
        "gmg": "methods.regularisers.gmg:GromovMongeGap",
    },
}
