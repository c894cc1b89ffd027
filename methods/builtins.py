"""Importing this module registers every built-in method (one module per method)."""
from methods import beta_vae  # noqa: F401
from methods import beta_tcvae  # noqa: F401
from methods.regularisers import hfs  # noqa: F401
from methods.regularisers import jacobian  # noqa: F401
from methods.regularisers import dst  # noqa: F401
from methods.regularisers import gmg  # noqa: F401
from methods import factor_vae  # noqa: F401
from methods import dip_vae  # noqa: F401
from methods import annealed_vae  # noqa: F401
