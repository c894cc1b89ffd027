"""dlib's protocol and the training path, on every dataset that needs no download."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from dlib_reference import dlib

import data_formats as fmt
from gmgbench.harness import data as datasets

PROCEDURAL = ["dsprites_procedural", "shapes3d_procedural"]


@pytest.fixture(scope="module")
def real_tiny(tmp_path_factory):
    """Tiny format-exact copies of the array-backed datasets, loaded once."""
    root = tmp_path_factory.mktemp("real")
    rng = np.random.RandomState(0)
    out = {"dsprites_full": fmt.write_dsprites(root, rng)[0](root),
           "shapes3d": fmt.write_shapes3d(root, rng)[0](root),
           "mpi3d_toy": fmt.write_mpi3d(root, rng)[0](root),
           "cars3d": fmt.write_cars3d(root, rng, n_objects=2)(root),
           # int16 store with Lanczos overshoot: the one dataset whose values leave [0, 255]
           "smallnorb": fmt.write_smallnorb(root, rng, side=4)(root)}
    return out


def test_registry_lists_every_dataset_of_the_issue():
    assert set(datasets.names()) == {"dsprites_full", "shapes3d", "smallnorb", "cars3d", "mpi3d_toy", "mpi3d_real",
                                     "color_dsprites", "noisy_dsprites", "scream_dsprites", "color_dsprites_procedural",
                                     "noisy_dsprites_procedural", "scream_dsprites_procedural",
                                     "dsprites_procedural", "shapes3d_procedural"}


@pytest.mark.parametrize("name, sizes, latent", [
    ("dsprites_full", [1, 3, 6, 40, 32, 32], [1, 2, 3, 4, 5]),
    ("smallnorb", [5, 10, 9, 18, 6], [0, 2, 3, 4]),
    ("cars3d", [4, 24, 183], [0, 1, 2]),
    ("shapes3d", [10, 10, 10, 8, 4, 15], list(range(6))),
])
def test_factor_sampling_replays_dlib_rng_calls(name, sizes, latent):
    """Same RandomState, same factors (and the same state afterwards) as dlib's state space."""
    util = dlib("data.ground_truth.util")
    ref = util.SplitDiscreteStateSpace(sizes, latent)
    klass = datasets.dataset_class(name)
    ours = object.__new__(klass)  # sampling needs no files
    assert list(klass.factor_sizes) == sizes and ours._latent == latent
    rs_ref, rs_ours = np.random.RandomState(3), np.random.RandomState(3)
    for num in (1, 16, 64):
        latent_ref = ref.sample_latent_factors(num, rs_ref)
        np.testing.assert_array_equal(ours.sample_factors(num, rs_ours), latent_ref)
        np.testing.assert_array_equal(ours._all_factors(latent_ref, rs_ours), ref.sample_all_factors(latent_ref, rs_ref))
    assert rs_ref.randint(1 << 30) == rs_ours.randint(1 << 30)


@pytest.mark.parametrize("name", PROCEDURAL)
def test_procedural_protocol(name):
    ds = datasets.load(name)
    rs = np.random.RandomState(0)
    factors, obs = ds.sample(32, rs)
    assert factors.shape == (32, ds.num_factors) and factors.dtype == np.int64
    assert obs.shape == (32, *ds.observation_shape) and obs.dtype == np.float32
    assert 0.0 <= obs.min() and obs.max() <= 1.0
    assert ds.factors_num_values == list(ds.factor_sizes)
    assert ds.dataset_size == int(np.prod(ds.factor_sizes))
    assert ds.sample_observations(5, rs).shape == (5, *ds.observation_shape)


def test_grids_of_the_issue():
    assert datasets.load("dsprites_procedural").factor_sizes == (3, 6, 40, 32, 32)
    assert datasets.load("shapes3d_procedural").factor_sizes == (10, 10, 10, 8, 4, 15)
    assert datasets.load("dsprites_procedural").observation_shape == (64, 64, 1)
    assert datasets.load("shapes3d_procedural").observation_shape == (64, 64, 3)


@pytest.mark.parametrize("name", PROCEDURAL)
def test_every_factor_value_changes_the_image(name):
    """Each factor is visible: along its axis every value gives a distinct image."""
    ds = datasets.load(name)
    base = ds._all_factors(ds.sample_factors(3, np.random.RandomState(1)), np.random.RandomState(1))
    for b in base:
        for i, size in enumerate(ds.factor_sizes):
            f = np.repeat(b[None], size, axis=0)
            f[:, i] = np.arange(size)
            imgs = ds.images(f).reshape(size, -1)
            if name == "dsprites_procedural" and i == 2:
                # Squares repeat every 90°, ellipses every 180°, and a small sprite's neighbouring
                # angles can rasterise alike: ask for half the distinct views its symmetry allows.
                period = (10, 20, 40)[b[0]]
                assert len({bytes(x) for x in imgs}) >= period // 2, (ds.factor_names[i], b)
                continue
            assert len({bytes(x) for x in imgs}) == size, (ds.factor_names[i], b)


def test_dsprites_procedural_is_binary_and_inside_frame():
    ds = datasets.load("dsprites_procedural")
    corners = np.array([[s, 5, o, x, y] for s in range(3) for o in (0, 5) for x in (0, 31) for y in (0, 31)])
    imgs = ds.images(corners)
    assert set(np.unique(imgs)) == {0, 255}
    # largest sprites at the extreme positions still leave the outermost rows/columns empty
    assert imgs[:, 0].max() == imgs[:, -1].max() == imgs[:, :, 0].max() == imgs[:, :, -1].max() == 0


def test_shapes3d_procedural_colours_follow_hue_factors():
    ds = datasets.load("shapes3d_procedural")
    f = np.array([[0, 5, 2, 7, 0, 7], [3, 5, 2, 7, 0, 7]])
    a, b = ds.images(f).astype(int)
    changed = np.any(a != b, axis=-1)
    # floor hue only changes the floor: the bottom rows, not the top rows
    assert changed[-4:].mean() > 0.9 and changed[:4].mean() == 0.0


_HASH_SCRIPT = """
import hashlib, numpy as np
from gmgbench.harness import data
for name in ("dsprites_procedural", "shapes3d_procedural"):
    ds = data.load(name)
    rs = np.random.RandomState(123)
    print(hashlib.sha256(ds.images(ds._all_factors(ds.sample_factors(256, rs), rs)).tobytes()).hexdigest())
"""


def test_procedural_images_are_deterministic_across_processes():
    here = []
    for name in PROCEDURAL:
        ds = datasets.load(name)
        rs = np.random.RandomState(123)
        here.append(hashlib.sha256(ds.images(ds._all_factors(ds.sample_factors(256, rs), rs)).tobytes()).hexdigest())
    out = subprocess.run([sys.executable, "-c", _HASH_SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == here


def _all_datasets(real_tiny):
    return [datasets.load(n) for n in PROCEDURAL] + list(real_tiny.values())


def test_training_batch_equals_observations_on_cpu(real_tiny):
    """Equal to the metric path's observations, clipped to [0, 1] for the Bernoulli loss
    (only SmallNORB's dlib-exact resize leaves [0, 1])."""
    for ds in _all_datasets(real_tiny):
        rs_a, rs_b = np.random.RandomState(5), np.random.RandomState(5)
        factors = ds.sample_factors(64, rs_a)
        ds.sample_factors(64, rs_b)
        batch = ds.training_batch(factors, rs_a, "cpu")
        obs = ds.sample_observations_from_factors(factors, rs_b)
        assert batch.dtype == torch.float32 and batch.shape == (64, ds.observation_shape[2], 64, 64)
        np.testing.assert_array_equal(batch.permute(0, 2, 3, 1).numpy(), np.clip(obs, 0, 1), err_msg=ds.name)
        assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0
        assert rs_a.randint(1 << 30) == rs_b.randint(1 << 30)  # same RNG consumption


def test_images_are_uint8_nhwc(real_tiny):
    for ds in _all_datasets(real_tiny):
        f = ds._all_factors(ds.sample_factors(4, np.random.RandomState(0)), np.random.RandomState(0))
        imgs = ds.images(f)
        assert imgs.dtype == np.uint8 and imgs.shape == (4, *ds.observation_shape)


@pytest.mark.gpu
def test_gpu_resident_batch_equals_cpu(real_tiny):
    for ds in _all_datasets(real_tiny):
        rs_a, rs_b = np.random.RandomState(5), np.random.RandomState(5)
        factors = ds.sample_factors(64, rs_a)
        ds.sample_factors(64, rs_b)
        gpu = ds.training_batch(factors, rs_a, "cuda")
        assert gpu.device.type == "cuda"
        np.testing.assert_array_equal(gpu.cpu().numpy(), ds.training_batch(factors, rs_b, "cpu").numpy(), err_msg=ds.name)
