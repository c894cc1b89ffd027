"""Speed of the data path, side by side with a β-VAE training step (ratios printed, never asserted).

`make test` runs each body once on small stores (--benchmark-disable). `make bench` times
them; GMGBENCH_BENCH_FULL=1 gives the real datasets full-size stores (random pixels in the
official shapes: dSprites bit-packed 377 MB, Shapes3D 1.5 GB, SmallNORB 400 MB, Cars3D
216 MB) so that gathers see real cache behaviour. Ratios are printed at the end of the
session (see bench_summary.py). What is timed is what the trainer does each step:
``sample_factors(64, rs)`` then ``training_batch(factors, rs, device)``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import bench_summary
from gmgbench.harness import data as datasets
from gmgbench.harness.data.dsprites_procedural import DSpritesProcedural

pytestmark = pytest.mark.benchmark_side_by_side

FULL = os.environ.get("GMGBENCH_BENCH_FULL") == "1"
BATCH = 64
REAL = ["dsprites_full", "shapes3d", "smallnorb", "cars3d", "mpi3d_toy"]


def synthetic(name: str, full: bool = FULL):
    """A real dataset's class with a random store of its official shape (or a small grid)."""
    klass = datasets.dataset_class(name)
    ds = object.__new__(klass)
    if not full or name == "mpi3d_toy":  # 5.6 GB of mpi3d is too much for a shared 2-core box
        ds.factor_sizes = tuple(min(s, 4) for s in klass.factor_sizes)
    n = ds.dataset_size
    rng = np.random.default_rng(0)
    if klass.packed_bits:
        ds._store = rng.integers(0, 256, size=(n, 64, 8), dtype=np.uint8)
    elif name == "smallnorb":
        ds._store = rng.integers(-20, 276, size=(n, 64, 64, 1), dtype=np.int16)
    else:
        ds._store = rng.integers(0, 256, size=(n, *klass.observation_shape), dtype=np.uint8)
    return ds


def _step_fn(ds, device="cpu"):
    rs = np.random.RandomState(0)
    return lambda: ds.training_batch(ds.sample_factors(BATCH, rs), rs, device)


def _record(benchmark, key: str, images: int = BATCH):
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        bench_summary.MEDIANS[key] = stats.stats.median
        benchmark.extra_info["images_per_s"] = round(images / stats.stats.median)


@pytest.mark.benchmark(group="data-path-cpu")
def test_bench_vae_step(benchmark):
    """The yardstick: one β-VAE training step (forward, backward, Adam) at batch 64 on CPU."""
    from gmgbench.methods.architectures import VAE
    from gmgbench.methods.beta_vae import gaussian_kl

    torch.manual_seed(0)
    model = VAE(num_channels=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = (torch.rand(BATCH, 1, 64, 64) < 0.2).float()

    def step():
        out = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, x, reduction="sum") / BATCH
        loss = loss + gaussian_kl(out.mu, out.logvar).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

    benchmark(step)
    _record(benchmark, "vae_step")


@pytest.mark.benchmark(group="data-path-cpu")
@pytest.mark.parametrize("name", REAL)
def test_bench_real_batch_cpu(benchmark, name):
    ds = synthetic(name)
    out = benchmark(_step_fn(ds))
    assert out.shape == (BATCH, ds.observation_shape[2], 64, 64) and out.dtype == torch.float32
    _record(benchmark, f"batch:{name}")


@pytest.mark.benchmark(group="data-path-cpu")
@pytest.mark.parametrize("name", ["dsprites_procedural", "shapes3d_procedural"])
def test_bench_procedural_batch_cpu(benchmark, name):
    ds = datasets.load(name)
    ds.images(np.zeros((1, len(ds.factor_sizes)), dtype=np.int64))  # build the caches outside the timing
    out = benchmark(_step_fn(ds))
    assert out.shape == (BATCH, ds.observation_shape[2], 64, 64)
    _record(benchmark, f"batch:{name}")


def _first_cut_dsprites(all_factors: np.ndarray) -> np.ndarray:
    """The first renderer (per-pixel implicit test of every image), kept as the baseline."""
    from gmgbench.harness.data.dsprites_procedural import _inside

    f = np.asarray(all_factors, dtype=np.int64)
    grid = np.arange(64, dtype=np.float64) + 0.5
    scale = np.linspace(0.5, 1.0, 6)[f[:, 1]][:, None, None] * 10.0
    theta = (np.arange(40) * (2 * np.pi / 40))[f[:, 2]][:, None, None]
    pos = np.linspace(0.0, 1.0, 32)
    cx = (12.0 + pos[f[:, 3]] * 40.0)[:, None, None]
    cy = (12.0 + pos[f[:, 4]] * 40.0)[:, None, None]
    dx, dy = grid[None, None, :] - cx, grid[None, :, None] - cy
    u = (np.cos(theta) * dx + np.sin(theta) * dy) / scale
    v = (-np.sin(theta) * dx + np.cos(theta) * dy) / scale
    masks = [_inside(int(s), u[i], v[i]) for i, s in enumerate(f[:, 0])]
    return (np.stack(masks).astype(np.uint8) * 255)[..., None]


@pytest.mark.benchmark(group="procedural-render")
@pytest.mark.parametrize("impl", ["dsprites_procedural", "dsprites_first_cut"])
def test_bench_dsprites_renderer_vs_first_cut(benchmark, impl):
    ds = DSpritesProcedural()
    rs = np.random.RandomState(0)
    f = ds._all_factors(ds.sample_factors(BATCH, rs), rs)
    render = ds.images if impl == "dsprites_procedural" else _first_cut_dsprites
    ds.images(f[:1])
    out = benchmark(render, f)
    assert out.shape == (BATCH, 64, 64, 1)
    _record(benchmark, f"render:{impl}")


@pytest.mark.benchmark(group="procedural-render")
@pytest.mark.parametrize("name", ["dsprites_procedural", "shapes3d_procedural"])
def test_bench_procedural_render_large_batch(benchmark, name):
    """Rendering throughput with big batches (what `data show` and metrics see); one thread of NumPy."""
    ds = datasets.load(name)
    rs = np.random.RandomState(0)
    n = 1024 if FULL else 128
    f = ds._all_factors(ds.sample_factors(n, rs), rs)
    ds.images(f[:1])
    out = benchmark(ds.images, f)
    assert out.shape == (n, *ds.observation_shape)
    _record(benchmark, f"render:{name}:{n}", images=n)


@pytest.mark.gpu
@pytest.mark.benchmark(group="data-path-gpu")
@pytest.mark.parametrize("name", REAL + ["dsprites_procedural", "shapes3d_procedural"])
def test_bench_batch_gpu(benchmark, name):
    """GPU-resident uint8 stores: the gather and float conversion happen on the device."""
    ds = datasets.load(name) if name.endswith("_procedural") else synthetic(name)
    fn = _step_fn(ds, "cuda")
    fn()  # upload the store once
    torch.cuda.synchronize()

    def step():
        out = fn()
        torch.cuda.synchronize()
        return out

    out = benchmark(step)
    assert out.device.type == "cuda"
    _record(benchmark, f"batch-gpu:{name}")
