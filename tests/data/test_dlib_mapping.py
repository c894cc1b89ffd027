"""Each real loader against disentanglement_lib's own loader, on format-exact small files.

Both loaders read the same files; with the same RandomState they must draw the same
factors and return the same float32 observations, bit for bit. dlib's loaders need small
fixes to run on NumPy 2 / Pillow >= 10 (see dlib-compat/NOTES.md); they are applied here,
with monkeypatch, never in site-packages.
"""
from __future__ import annotations

import io
import os
import types

import numpy as np
import pytest
from dlib_reference import dlib

import data_formats as fmt


def _same_samples(ours, ref, num=64, seed=7, draws=3):
    rs_ours, rs_ref = np.random.RandomState(seed), np.random.RandomState(seed)
    for _ in range(draws):
        f_ours, x_ours = ours.sample(num, rs_ours)
        f_ref, x_ref = ref.sample(num, rs_ref)
        np.testing.assert_array_equal(f_ours, f_ref)
        x_ref = np.asarray(x_ref)
        assert x_ours.dtype == np.float32
        assert x_ours.shape == x_ref.shape == (num, *ours.observation_shape)
        np.testing.assert_array_equal(x_ours, x_ref.astype(np.float32))
    assert ours.num_factors == ref.num_factors
    assert list(ours.observation_shape) == list(ref.observation_shape)
    return x_ours


class _OpenBytes:
    def __init__(self, path, mode="rb"):
        with open(path, mode) as f:
            self._buf = io.BytesIO(f.read())

    def __enter__(self):
        return self._buf

    def __exit__(self, *exc):
        return False


def _regrid(ref, sizes, util):
    """dlib's loaders that hard-code the full grid, pointed at the tiny grid of the test file."""
    ref.factor_sizes = list(sizes)
    ref.latent_factor_indices = list(range(len(sizes)))
    ref.state_space = util.SplitDiscreteStateSpace(ref.factor_sizes, ref.latent_factor_indices)
    ref.factor_bases = np.prod(ref.factor_sizes) / np.cumprod(ref.factor_sizes)
    return ref


@pytest.fixture
def pil_antialias(monkeypatch):
    """Pillow 10 removed ANTIALIAS (it was LANCZOS) and thumbnail() no longer takes (64, 64, 3)."""
    from PIL import Image

    monkeypatch.setattr(Image, "ANTIALIAS", Image.LANCZOS, raising=False)
    thumbnail = Image.Image.thumbnail
    monkeypatch.setattr(Image.Image, "thumbnail", lambda self, size, *a, **k: thumbnail(self, tuple(size[:2]), *a, **k))


def test_dsprites_matches_dlib(tmp_path, monkeypatch):
    tiny, path = fmt.write_dsprites(tmp_path, np.random.RandomState(0))
    mod = dlib("data.ground_truth.dsprites")
    monkeypatch.setattr(mod, "DSPRITES_PATH", str(path))
    ref = mod.DSprites([1, 2, 3, 4, 5])  # named_data's dsprites_full
    ours = tiny(tmp_path)
    x = _same_samples(ours, ref)
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert ours.factors_num_values == list(fmt.DSPRITES_SIZES[1:])


def test_shapes3d_matches_dlib(tmp_path, monkeypatch):
    rng = np.random.RandomState(1)
    tiny, _, images, labels = fmt.write_shapes3d(tmp_path, rng)
    # dlib reads an npz laid out as [f0, ..., f5, 64, 64, 3] that DeepMind never published;
    # the same rows in that layout are what it would read.
    sizes = fmt.SHAPES3D_SIZES
    npz = tmp_path / "dlib_shapes3d.npz"
    np.savez(npz, images=images.reshape(*sizes, 64, 64, 3), labels=labels.reshape(*sizes, 6))
    mod = dlib("data.ground_truth.shapes3d")
    monkeypatch.setattr(mod, "SHAPES3D_PATH", str(npz))
    # dlib reads the lazily loaded npz after its `with` block closed the file; a stand-in
    # GFile that leaves the bytes readable lets it finish.
    monkeypatch.setattr(mod, "tf", types.SimpleNamespace(gfile=types.SimpleNamespace(GFile=_OpenBytes)))
    ref = _regrid(mod.Shapes3D(), sizes, dlib("data.ground_truth.util"))
    _same_samples(tiny(tmp_path), ref)


def test_smallnorb_matches_dlib(tmp_path, monkeypatch, pil_antialias):
    tiny = fmt.write_smallnorb(tmp_path, np.random.RandomState(2))
    mod = dlib("data.ground_truth.norb")
    monkeypatch.setattr(mod, "SMALLNORB_TEMPLATE", str(tmp_path / "small_norb" / "smallnorb-{}-{}.mat"))

    # NumPy 2: int() of a 1-element array is an error; dlib reads its header fields that way.
    def frombuffer(buffer, dtype=float, count=-1, offset=0):
        out = np.frombuffer(buffer, dtype, count, offset)
        return out[0] if count == 1 else out

    monkeypatch.setattr(mod, "np", types.SimpleNamespace(**{**np.__dict__, "frombuffer": frombuffer}))
    ref = mod.SmallNORB()
    ours = tiny(tmp_path)
    assert ours.factors_num_values == ref.factors_num_values == [5, 9, 18, 6]
    x = _same_samples(ours, ref, num=128)
    # dlib's resize runs on 32-bit pixels, so Lanczos overshoot is kept: values outside [0, 1].
    assert x.min() < 0.0 or x.max() > 1.0


def test_cars3d_matches_dlib_on_sorted_listing(tmp_path, monkeypatch, pil_antialias):
    tiny = fmt.write_cars3d(tmp_path, np.random.RandomState(3))
    mod = dlib("data.ground_truth.cars3d")
    monkeypatch.setattr(mod, "CARS3D_PATH", str(tmp_path / "cars"))
    # dlib numbers objects by an unordered directory listing; ours by the sorted one.
    monkeypatch.setattr(mod, "gfile", types.SimpleNamespace(ListDirectory=lambda p: sorted(os.listdir(p)), Open=open))
    ref = mod.Cars3D()
    ours = tiny(tmp_path)
    rs = np.random.RandomState(4)
    factors = ours.sample_factors(200, rs)
    np.testing.assert_array_equal(
        ours.sample_observations_from_factors(factors, rs), ref.sample_observations_from_factors(factors, rs).astype(np.float32)
    )
    # object k is the k-th file in sorted order
    one = np.array([[1, 5, 2]])
    view = ours.images(one)[0]
    import scipy.io

    im = scipy.io.loadmat(tmp_path / "cars" / "car_003_mesh.mat")["im"]
    from gmgbench.harness.data.cars3d import resize_view

    np.testing.assert_array_equal(view, resize_view(np.ascontiguousarray(im[:, :, :, 5, 1])))


@pytest.mark.parametrize("name", ["mpi3d_toy", "mpi3d_real"])
def test_mpi3d_matches_dlib(tmp_path, monkeypatch, name):
    tiny, _ = fmt.write_mpi3d(tmp_path, np.random.RandomState(5), name)
    mod = dlib("data.ground_truth.mpi3d")
    monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(tmp_path))
    gfile = types.SimpleNamespace(exists=os.path.exists, GFile=_OpenBytes)
    monkeypatch.setattr(mod, "tf", types.SimpleNamespace(io=types.SimpleNamespace(gfile=gfile)))
    ref = _regrid(mod.MPI3D(mode=name), fmt.MPI3D_SIZES, dlib("data.ground_truth.util"))
    _same_samples(tiny(tmp_path), ref)


def test_dlib_metric_consumes_our_dataset(tmp_path):
    """dlib's own sampling helper runs on our dataset unchanged."""
    tiny, _ = fmt.write_dsprites(tmp_path, np.random.RandomState(0))
    ours = tiny(tmp_path)
    utils = dlib("evaluation.metrics.utils")
    codes, factors = utils.generate_batch_factor_code(
        ours, lambda x: x.reshape(len(x), -1)[:, :3], 50, np.random.RandomState(0), 16)
    assert codes.shape == (3, 50) and factors.shape == (5, 50)
