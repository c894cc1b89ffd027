"""Sampling (factors, codes) exactly as disentanglement_lib does, encoding in large batches.

dlib's ``generate_batch_factor_code`` calls ``ground_truth_data.sample(min(batch, left), rs)``
repeatedly and encodes each small batch. The draws from ``rs`` never depend on the codes, so we
replay the same ``sample`` calls (same sizes, same order: same factors and observations) but
hand the representation function large chunks of observations. For a row-wise representation
function the codes are bit-identical to dlib's.

Inside :func:`shared_codes` (which :func:`metrics.evaluate` enters), every sampled run is
remembered by the RandomState's state at its start, with the state at each batch boundary, so a
second metric started from the same seed reuses the first one's codes instead of re-rendering
and re-encoding the same observations. Requires a deterministic representation function
(posterior means), which is what the metrics assume anyway.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from gmgbench.metrics.validation import check_random_state

__all__ = ["generate_batch_factor_code", "train_test_codes", "encode", "encode_groups", "shared_codes", "DEFAULT_ENCODE_BATCH"]

# Observations handed to the representation function at once: large enough to keep a GPU busy,
# small enough that a chunk of 64×64×3 float32 images stays under ~50 MB.
DEFAULT_ENCODE_BATCH = 1024


def _check_codes(codes: np.ndarray, num: int) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] != num:
        raise ValueError(
            f"representation_function must map a batch of {num} observations to a (B, D) = ({num}, D) "
            f"array of codes; it returned shape {codes.shape}"
        )
    return codes


def encode(representation_function: Callable, observations: np.ndarray,
           batch_size: int | None = None) -> np.ndarray:
    """Codes ``(N, D)`` of observations ``(N, H, W, C)``, encoded ``batch_size`` at a time
    (default: the current ``shared_codes`` block's size, else 1024)."""
    batch_size = _ENCODE_BATCH.get() if batch_size is None else int(batch_size)
    chunks = []
    for start in range(0, observations.shape[0], batch_size):
        obs = observations[start:start + batch_size]
        chunks.append(_check_codes(representation_function(obs), obs.shape[0]))
    return np.concatenate(chunks, axis=0)


def encode_groups(representation_function: Callable, groups) -> Iterator[np.ndarray]:
    """Codes of each observation batch in ``groups`` (an iterable), encoded many batches at a time.

    For metrics that draw many small batches (beta-VAE, FactorVAE): the draws happen when the
    iterable is consumed, in order, so the RandomState sees dlib's sequence of calls.
    """
    encode_batch = _ENCODE_BATCH.get()
    pending: list[np.ndarray] = []
    pending_n = 0

    def flush():
        obs = np.concatenate(pending, axis=0)
        codes = _check_codes(representation_function(obs), obs.shape[0])
        start = 0
        for o in pending:
            # Contiguous per group, as the batch dlib would have encoded alone.
            yield np.ascontiguousarray(codes[start:start + o.shape[0]])
            start += o.shape[0]

    for obs in groups:
        pending.append(obs)
        pending_n += obs.shape[0]
        if pending_n >= encode_batch:
            yield from flush()
            pending, pending_n = [], 0
    if pending:
        yield from flush()


def _state_key(random_state: np.random.RandomState) -> bytes:
    name, keys, pos, has_gauss, cached = random_state.get_state()
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(keys).tobytes())
    h.update(np.array([pos, has_gauss], dtype=np.int64).tobytes())
    h.update(np.array([cached], dtype=np.float64).tobytes())
    return h.digest()


@dataclass
class _Run:
    codes: np.ndarray
    factors: np.ndarray
    batch_size: int
    # boundary_states[i] is the RandomState's state after the first i full batches.
    boundary_states: list = field(default_factory=list)
    end_state: tuple | None = None  # after all points, when the last batch was short


@dataclass
class _Cache:
    ground_truth_data: object
    representation_function: object
    encode_batch_size: int
    runs: dict = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    def matches(self, gtd, fn) -> bool:
        return gtd is self.ground_truth_data and fn is self.representation_function


_CACHE: contextvars.ContextVar[_Cache | None] = contextvars.ContextVar("metrics_code_cache", default=None)
_ENCODE_BATCH: contextvars.ContextVar[int] = contextvars.ContextVar("metrics_encode_batch",
                                                                    default=DEFAULT_ENCODE_BATCH)


@contextlib.contextmanager
def shared_codes(ground_truth_data, representation_function,
                 encode_batch_size: int = DEFAULT_ENCODE_BATCH) -> Iterator[_Cache]:
    """Within the block, metrics on this (dataset, representation) share sampled codes."""
    cache = _Cache(ground_truth_data, representation_function, int(encode_batch_size))
    token = _CACHE.set(cache)
    token_b = _ENCODE_BATCH.set(int(encode_batch_size))
    try:
        yield cache
    finally:
        _CACHE.reset(token)
        _ENCODE_BATCH.reset(token_b)


def _sample_run(ground_truth_data, representation_function, num_points: int,
                random_state: np.random.RandomState, batch_size: int, record: bool) -> _Run:
    encode_batch = _ENCODE_BATCH.get()
    factors, codes, pending = [], [], []
    states = [random_state.get_state()] if record else []
    pending_n, i = 0, 0

    def flush():
        nonlocal pending, pending_n
        if pending:
            obs = np.concatenate(pending, axis=0)
            codes.append(_check_codes(representation_function(obs), obs.shape[0]))
            pending, pending_n = [], 0

    while i < num_points:
        n = min(num_points - i, batch_size)
        f, obs = ground_truth_data.sample(n, random_state)
        factors.append(np.asarray(f))
        pending.append(obs)
        pending_n += n
        i += n
        if record and n == batch_size:
            states.append(random_state.get_state())
        if pending_n >= encode_batch:
            flush()
    flush()
    run = _Run(np.concatenate(codes, axis=0), np.concatenate(factors, axis=0), batch_size, states)
    if num_points % batch_size:
        run.end_state = random_state.get_state()
    return run


def generate_batch_factor_code(ground_truth_data, representation_function, num_points: int,
                               random_state: np.random.RandomState, batch_size: int
                               ) -> tuple[np.ndarray, np.ndarray]:
    """``(codes (N, D), factors (N, K))``: dlib's sampling, points first (dlib returns both transposed).

    Leaves ``random_state`` exactly where dlib's function leaves it.
    """
    num_points, batch_size = int(num_points), int(batch_size)
    if num_points < 1 or batch_size < 1:
        raise ValueError(f"num_points and batch_size must be positive; got {num_points} and {batch_size}")
    cache = _CACHE.get()
    if cache is None or not cache.matches(ground_truth_data, representation_function):
        run = _sample_run(ground_truth_data, representation_function, num_points, random_state,
                          batch_size, record=False)
        return run.codes, run.factors

    key = (_state_key(random_state), batch_size)
    run = cache.runs.get(key)
    full, rest = divmod(num_points, batch_size)
    if run is not None and run.codes.shape[0] >= num_points and (
            rest == 0 or run.codes.shape[0] == num_points):
        # A prefix of whole batches drew exactly what a fresh run would have drawn.
        cache.hits += 1
        if rest == 0:
            random_state.set_state(run.boundary_states[full])
        else:
            random_state.set_state(run.end_state)
        return run.codes[:num_points].copy(), run.factors[:num_points].copy()
    cache.misses += 1
    new = _sample_run(ground_truth_data, representation_function, num_points, random_state,
                      batch_size, record=True)
    if run is None or new.codes.shape[0] > run.codes.shape[0]:
        cache.runs[key] = new
    # Copies: a metric that edits its arrays in place must not corrupt the cache.
    return new.codes.copy(), new.factors.copy()


def checked_codes(ground_truth_data, representation_function, random_state, num_points: int,
                  batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``generate_batch_factor_code`` after checking ``random_state``: a metric's one sample."""
    check_random_state(random_state)
    return generate_batch_factor_code(ground_truth_data, representation_function, num_points, random_state,
                                      batch_size)


def train_test_codes(ground_truth_data, representation_function, random_state: np.random.RandomState,
                     num_train: int, num_test: int, batch_size: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(codes_train, factors_train, codes_test, factors_test)``: the training points, then the
    test points, from one RandomState in that order, as dlib's two-set metrics draw them."""
    codes_train, factors_train = checked_codes(
        ground_truth_data, representation_function, random_state, num_train, batch_size)
    codes_test, factors_test = generate_batch_factor_code(
        ground_truth_data, representation_function, num_test, random_state, batch_size)
    return codes_train, factors_train, codes_test, factors_test
