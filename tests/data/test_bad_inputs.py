"""Missing, truncated or malformed files give a DatasetError naming the file and what was expected."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import data_formats as fmt
from gmgbench.harness import data as datasets
from gmgbench.harness.data import DatasetError
from gmgbench.harness.data.files import OFFICIAL_FILES


def _truncate(path, keep: float = 0.5):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))


def test_unknown_name_lists_valid_ones():
    with pytest.raises(KeyError, match="valid datasets: .*shapes3d"):
        datasets.load("shapes4d")


def test_no_root_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    with pytest.raises(DatasetError, match=r"DISENTANGLEMENT_LIB_DATA.*data check shapes3d"):
        datasets.load("shapes3d")


def test_missing_root_directory(tmp_path):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nowhere'} does not exist"):
        datasets.load("dsprites_full", tmp_path / "nowhere")


@pytest.mark.parametrize("name", ["dsprites_full", "shapes3d", "mpi3d_toy", "mpi3d_real"])
def test_missing_file_names_path_and_prepare_command(tmp_path, name):
    expected = str(tmp_path / OFFICIAL_FILES[name][0].path)
    with pytest.raises(DatasetError, match=rf"missing file {expected}.*gmgbench data prepare {name}"):
        datasets.load(name, tmp_path)


def test_missing_one_of_the_norb_files(tmp_path):
    tiny = fmt.write_smallnorb(tmp_path, np.random.RandomState(0), side=4)
    gone = tmp_path / OFFICIAL_FILES["smallnorb"][5].path
    gone.unlink()
    with pytest.raises(DatasetError, match=rf"missing 1 of 6 files: {gone}"):
        tiny(tmp_path)


@pytest.fixture(scope="module")
def norb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("norb")
    return root, fmt.write_smallnorb(root, np.random.RandomState(0), side=4)


def _norb_copy(norb_root, tmp_path):
    root, tiny = norb_root
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    return tiny, tmp_path / OFFICIAL_FILES["smallnorb"][0].path


def test_truncated_norb_matrix(norb_root, tmp_path):
    tiny, dat = _norb_copy(norb_root, tmp_path)
    _truncate(dat)
    with pytest.raises(DatasetError, match=rf"{dat}: .* bytes but its header \(24300, 2, 4, 4\) uint8 needs .*truncated"):
        tiny(tmp_path)


def test_wrong_norb_header_magic(norb_root, tmp_path):
    tiny, dat = _norb_copy(norb_root, tmp_path)
    with open(dat, "r+b") as f:
        f.write(np.array([0x12345678], dtype="<i4").tobytes())
    with pytest.raises(DatasetError, match=rf"{dat}: header magic 0x12345678 is not a NORB binary matrix"):
        tiny(tmp_path)


def test_wrong_norb_shape(norb_root, tmp_path):
    root, _ = norb_root
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)

    class WrongSide(fmt.smallnorb.SmallNORB):
        image_side = 96

    with pytest.raises(DatasetError, match=r"header shape \(24300, 2, 4, 4\), expected \(24300, 2, 96, 96\)"):
        WrongSide(tmp_path)


def test_norb_labels_that_miss_combinations(norb_root, tmp_path):
    tiny, _ = _norb_copy(norb_root, tmp_path)
    info = tmp_path / OFFICIAL_FILES["smallnorb"][2].path
    with open(info, "r+b") as f:  # first row's instance := second row's, so one combination repeats
        f.seek(20)
        row = np.frombuffer(f.read(32), dtype="<i4")
        f.seek(20)
        f.write(row[4:8].tobytes())
    with pytest.raises(DatasetError, match="do not cover the 48600 factor combinations"):
        tiny(tmp_path)


def test_truncated_shapes3d(tmp_path):
    tiny, path, _, _ = fmt.write_shapes3d(tmp_path, np.random.RandomState(0))
    _truncate(path)
    with pytest.raises(DatasetError, match=rf"{path}: unreadable HDF5 .*sha256 0a0f6ed98b"):
        tiny(tmp_path)


def test_shapes3d_wrong_shape(tmp_path):
    _, path, _, _ = fmt.write_shapes3d(tmp_path, np.random.RandomState(0))
    with pytest.raises(DatasetError, match=r"\['images'\]: shape \(288, 64, 64, 3\) uint8, expected \(480000, 64, 64, 3\)"):
        datasets.load("shapes3d", tmp_path)


def test_shapes3d_rows_out_of_order(tmp_path):
    import h5py

    tiny, path, _, labels = fmt.write_shapes3d(tmp_path, np.random.RandomState(0))
    with h5py.File(path, "r+") as f:
        f["labels"][...] = labels[::-1]
    with pytest.raises(DatasetError, match="not in row-major factor order"):
        tiny(tmp_path)


def test_truncated_dsprites(tmp_path):
    tiny, path = fmt.write_dsprites(tmp_path, np.random.RandomState(0))
    _truncate(path, 0.7)
    with pytest.raises(DatasetError, match=rf"{path}: unreadable npz .*expected md5 7da33b31"):
        tiny(tmp_path)


def test_dsprites_wrong_latent_sizes(tmp_path):
    fmt.write_dsprites(tmp_path, np.random.RandomState(0))
    with pytest.raises(DatasetError, match=r"latents_classes spans factor sizes \[1, 3, 2, 3, 2, 2\], expected \[1, 3, 6, 40, 32, 32\]"):
        datasets.load("dsprites_full", tmp_path)


def test_dsprites_non_binary_pixels(tmp_path):
    tiny, path = fmt.write_dsprites(tmp_path, np.random.RandomState(0))
    with np.load(path, allow_pickle=True) as d:
        arrays = {k: d[k] for k in d.files}
    arrays["imgs"] = arrays["imgs"] * 255
    np.savez_compressed(path, **arrays)
    with pytest.raises(DatasetError, match="pixel values above 1"):
        tiny(tmp_path)


def test_empty_cars_folder(tmp_path):
    (tmp_path / "cars").mkdir()
    with pytest.raises(DatasetError, match=rf"{tmp_path / 'cars'} is empty; expected the 183 car_XXX_mesh.mat"):
        datasets.load("cars3d", tmp_path)


def test_missing_cars_folder(tmp_path):
    with pytest.raises(DatasetError, match=rf"missing folder {tmp_path / 'cars'}"):
        datasets.load("cars3d", tmp_path)


def test_cars_file_without_im(tmp_path):
    import scipy.io

    tiny = fmt.write_cars3d(tmp_path, np.random.RandomState(0), n_objects=1)
    path = tmp_path / "cars" / "car_001_mesh.mat"
    scipy.io.savemat(path, {"mask": np.zeros((2, 2), np.uint8)})
    with pytest.raises(DatasetError, match=rf"{path}: no variable 'im'"):
        tiny(tmp_path)


def test_truncated_cars_file(tmp_path):
    tiny = fmt.write_cars3d(tmp_path, np.random.RandomState(0), n_objects=1)
    path = tmp_path / "cars" / "car_001_mesh.mat"
    _truncate(path)
    with pytest.raises(DatasetError, match=rf"{path}: unreadable .mat file"):
        tiny(tmp_path)


def test_truncated_mpi3d(tmp_path):
    tiny, path = fmt.write_mpi3d(tmp_path, np.random.RandomState(0))
    _truncate(path)
    with pytest.raises(DatasetError, match=rf"{path}: unreadable npz .*md5 55889cb7"):
        tiny(tmp_path)


def test_bad_factors_are_rejected_with_sizes():
    ds = datasets.load("dsprites_procedural")
    with pytest.raises(ValueError, match=r"shape \[N, 5\]"):
        ds.sample_observations_from_factors(np.zeros((2, 4), dtype=int), np.random.RandomState(0))
    with pytest.raises(ValueError, match=r"\[3, 6, 40, 32, 32\]"):
        ds.sample_observations_from_factors(np.array([[3, 0, 0, 0, 0]]), np.random.RandomState(0))
