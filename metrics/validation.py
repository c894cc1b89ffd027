"""Clear errors for the array API: shapes, dtypes and finiteness named by argument."""
from __future__ import annotations

import numpy as np

__all__ = ["check_codes_factors", "check_random_state", "require_version", "UNTESTED_ENV"]

UNTESTED_ENV = "GMGBENCH_ALLOW_UNTESTED"


def _release(version: str) -> tuple[int, ...]:
    import re

    return tuple(int(x) for x in re.findall(r"\d+", version.split("+")[0])[:3])


def require_version(dist: str, at_least: str, below: str, why: str) -> str:
    """Fail loudly unless the installed ``dist`` is in ``[at_least, below)``, the range its
    private API was validated for (pyproject.toml states the same range; a test keeps them
    equal). ``$GMGBENCH_ALLOW_UNTESTED=1`` turns the error into a warning, at your own risk.
    Returns the installed version."""
    from importlib import metadata

    version = metadata.version(dist)
    if _release(at_least) <= _release(version) < _release(below):
        return version
    msg = (f"{dist} {version} is installed, but {why}, validated for {dist}>={at_least},<{below}; "
           f"install the tested version (pip install -c constraints.txt ...), or set {UNTESTED_ENV}=1 "
           "to run anyway and check the numbers yourself")
    import os

    if os.environ.get(UNTESTED_ENV) == "1":
        import warnings

        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return version
    raise RuntimeError(msg)


def check_codes_factors(codes, factors, *, codes_name: str = "codes", factors_name: str = "factors",
                        min_points: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``codes (N, D)`` float and ``factors (N, K)`` integer class labels, validated."""
    codes = np.asarray(codes)
    factors = np.asarray(factors)
    if codes.ndim != 2:
        raise ValueError(f"{codes_name} must be a (num_points, num_codes) array; got shape {codes.shape}")
    if factors.ndim != 2:
        raise ValueError(f"{factors_name} must be a (num_points, num_factors) array; got shape {factors.shape}")
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(f"{codes_name} has {codes.shape[0]} points but {factors_name} has {factors.shape[0]}; "
                         "both are points-first (num_points, ...)")
    if codes.shape[0] < min_points:
        raise ValueError(f"{codes_name} needs at least {min_points} points; got {codes.shape[0]}")
    if codes.shape[1] < 1 or factors.shape[1] < 1:
        raise ValueError(f"{codes_name} and {factors_name} need at least one column; got shapes "
                         f"{codes.shape} and {factors.shape}")
    if not np.issubdtype(codes.dtype, np.number):
        raise ValueError(f"{codes_name} must be numeric; got dtype {codes.dtype}")
    if not np.all(np.isfinite(codes)):
        raise ValueError(f"{codes_name} contains NaN or infinite values")
    if not np.issubdtype(factors.dtype, np.integer):
        if not (np.issubdtype(factors.dtype, np.number) and np.all(np.mod(factors, 1) == 0)):
            raise ValueError(f"{factors_name} must hold integer factor values (class labels); got dtype "
                             f"{factors.dtype}")
        factors = factors.astype(np.int64)
    return codes, factors


def check_random_state(random_state) -> np.random.RandomState:
    if isinstance(random_state, np.random.RandomState):
        return random_state
    raise TypeError("random_state must be a numpy.random.RandomState (dlib's protocol), e.g. "
                    f"np.random.RandomState(0); got {type(random_state).__name__}")


def check_train_test(codes_train, factors_train, codes_test, factors_test):
    """:func:`check_codes_factors` on both sets of a two-set metric, which must agree in width."""
    codes_train, factors_train = check_codes_factors(codes_train, factors_train, codes_name="codes_train",
                                                     factors_name="factors_train")
    codes_test, factors_test = check_codes_factors(codes_test, factors_test, codes_name="codes_test",
                                                   factors_name="factors_test")
    if codes_test.shape[1] != codes_train.shape[1] or factors_test.shape[1] != factors_train.shape[1]:
        raise ValueError(f"train and test sets disagree in width: codes {codes_train.shape[1]} vs "
                         f"{codes_test.shape[1]}, factors {factors_train.shape[1]} vs {factors_test.shape[1]}")
    return codes_train, factors_train, codes_test, factors_test
