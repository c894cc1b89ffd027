"""`gmgbench data check|prepare|show`, driven through argparse as harness/cli.py wires harness/commands/data.py."""
from __future__ import annotations

import argparse
import gzip
import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest

import data_formats as fmt
from gmgbench.harness.commands import data as cli
from gmgbench.harness.data import DatasetError, files
from gmgbench.harness.data.files import OfficialFile


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="gmgbench")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *argv])
    code = args.func(args)
    return code, capsys.readouterr().out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_spec(tmp_path, monkeypatch):
    """shapes3d's official entry replaced by one describing a small file we can vouch for."""
    _, path, _, _ = fmt.write_shapes3d(tmp_path / "src", np.random.RandomState(0))

    def use(**kw):
        spec = OfficialFile(path="3dshapes/3dshapes.h5", urls=(path.as_uri(),), **kw)
        monkeypatch.setitem(files.OFFICIAL_FILES, "shapes3d", (spec,))
        return spec

    return path, use


def test_register_sets_func_on_each_subcommand():
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    for argv in (["data", "check"], ["data", "prepare", "shapes3d"], ["data", "show", "dsprites_procedural"]):
        assert callable(parser.parse_args(argv).func)
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "prepare", "nope"])


def test_check_without_root_reports_and_passes(monkeypatch, capsys):
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    code, out = run(["check"], capsys)
    assert code == 0
    assert "data root: (none)  [not set]" in out
    assert "dsprites_procedural: procedural, no files needed" in out
    assert "shapes3d: not checked, no data root" in out


def test_check_named_missing_dataset_fails_and_says_where(tmp_path, capsys):
    code, out = run(["check", "smallnorb", "--root", str(tmp_path)], capsys)
    assert code == 1
    assert "smallnorb: 0/6 present" in out
    assert f"missing          {tmp_path / 'small_norb/smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat'}" in out


def test_check_all_ignores_absent_datasets(tmp_path, capsys):
    code, out = run(["check", "--root", str(tmp_path)], capsys)
    assert code == 0 and "cars3d: 0/1 present" in out


def test_check_verifies_known_checksum(tmp_path, capsys, tiny_spec, monkeypatch):
    path, use = tiny_spec
    use(sha256=_sha(path))
    root = tmp_path / "root"
    (root / "3dshapes").mkdir(parents=True)
    (root / "3dshapes/3dshapes.h5").write_bytes(path.read_bytes())
    monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(root))
    code, out = run(["check", "shapes3d"], capsys)
    assert code == 0 and "ok               " in out and "sha256 verified" in out


def test_check_reports_mismatch(tmp_path, capsys, tiny_spec):
    path, use = tiny_spec
    use(sha256="0" * 64)
    (tmp_path / "3dshapes").mkdir()
    (tmp_path / "3dshapes/3dshapes.h5").write_bytes(path.read_bytes())
    code, out = run(["check", "--root", str(tmp_path)], capsys)
    assert code == 1 and "MISMATCH" in out and f"expected {'0' * 64}" in out


def test_check_unknown_checksum_is_not_a_failure(tmp_path, capsys, tiny_spec):
    path, use = tiny_spec
    use()
    (tmp_path / "3dshapes").mkdir()
    (tmp_path / "3dshapes/3dshapes.h5").write_bytes(path.read_bytes())
    code, out = run(["check", "shapes3d", "--root", str(tmp_path)], capsys)
    assert code == 0 and "unknown checksum" in out and _sha(path) in out


def test_check_wrong_size_names_expected(tmp_path, capsys):
    (tmp_path / "3dshapes").mkdir()
    (tmp_path / "3dshapes/3dshapes.h5").write_bytes(b"\0" * 1000)
    code, out = run(["check", "shapes3d", "--root", str(tmp_path)], capsys)
    assert code == 1 and "wrong size" in out and "expected 267,573,662" in out


def test_check_load_validates_arrays(tmp_path, capsys, tiny_spec):
    path, use = tiny_spec
    use()
    (tmp_path / "3dshapes").mkdir()
    (tmp_path / "3dshapes/3dshapes.h5").write_bytes(path.read_bytes())
    code, out = run(["check", "shapes3d", "--root", str(tmp_path), "--load"], capsys)
    assert code == 1 and "load failed" in out and "expected (480000, 64, 64, 3)" in out


def test_prepare_downloads_and_verifies(tmp_path, capsys, tiny_spec):
    path, use = tiny_spec
    use(sha256=_sha(path))
    code, out = run(["prepare", "shapes3d", "--root", str(tmp_path / "root")], capsys)
    assert code == 0, out
    assert (tmp_path / "root/3dshapes/3dshapes.h5").read_bytes() == path.read_bytes()
    assert not (tmp_path / "root/.download").exists()
    code, out = run(["prepare", "shapes3d", "--root", str(tmp_path / "root")], capsys)
    assert code == 0 and "already" not in out and "present and verified" in out


def test_prepare_rejects_a_bad_download_and_explains(tmp_path, capsys, tiny_spec):
    path, use = tiny_spec
    use(sha256="f" * 64)
    code, out = run(["prepare", "shapes3d", "--root", str(tmp_path)], capsys)
    assert code == 1
    assert "checksum mismatch" in out and f"put it at {tmp_path / '3dshapes/3dshapes.h5'}" in out
    assert not (tmp_path / "3dshapes/3dshapes.h5").exists()


def test_prepare_unreachable_prints_what_to_fetch(tmp_path, capsys, monkeypatch):
    spec = files.OFFICIAL_FILES["smallnorb"][0]
    monkeypatch.setitem(files.OFFICIAL_FILES, "smallnorb", (
        OfficialFile(path=spec.path, urls=((tmp_path / "nothing.gz").as_uri(),), download=spec.download, md5=spec.md5),))
    code, out = run(["prepare", "smallnorb", "--root", str(tmp_path)], capsys)
    assert code == 1 and "failed: URLError" in out
    assert f"and gunzip it to {tmp_path / spec.path}" in out


def test_prepare_without_root_or_network(monkeypatch, capsys):
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    code, out = run(["prepare", "smallnorb"], capsys)
    assert code == 1 and "no data root" in out
    assert "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat.gz" in out
    assert "expected checksum: 66054832f9accfe74a0f4c36a75bc0a2" in out
    code, out = run(["prepare", "dsprites_procedural"], capsys)
    assert code == 0 and "nothing to prepare" in out


def test_prepare_gunzips_norb_downloads(tmp_path, capsys, monkeypatch):
    raw = tmp_path / "m.mat"
    fmt.write_binary_matrix(raw, np.arange(6, dtype="<i4"), fmt.NORB_INT)
    gz = tmp_path / "m.mat.gz"
    gz.write_bytes(gzip.compress(raw.read_bytes()))
    spec = OfficialFile(path="small_norb/m.mat", urls=(gz.as_uri(),), download="m.mat.gz",
                        download_md5=hashlib.md5(gz.read_bytes()).hexdigest(), md5=hashlib.md5(raw.read_bytes()).hexdigest())
    monkeypatch.setitem(files.OFFICIAL_FILES, "smallnorb", (spec,))
    code, out = run(["prepare", "smallnorb", "--root", str(tmp_path / "root")], capsys)
    assert code == 0, out
    assert (tmp_path / "root/small_norb/m.mat").read_bytes() == raw.read_bytes()


def test_prepare_extracts_cars_from_archive(tmp_path, capsys, monkeypatch):
    fmt.write_cars3d(tmp_path / "src" / "data", np.random.RandomState(0), n_objects=2)
    archive = tmp_path / "nips2015-analogy-data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "data", arcname="data")
    spec = OfficialFile(path="cars", urls=(archive.as_uri(),), download=archive.name,
                        download_md5=hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.setitem(files.OFFICIAL_FILES, "cars3d", (spec,))
    code, out = run(["prepare", "cars3d", "--root", str(tmp_path / "root")], capsys)
    assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "root/cars").iterdir()) == ["car_001_mesh.mat", "car_002_mesh.mat"]


@pytest.mark.parametrize("name, channels", [("dsprites_procedural", 1), ("shapes3d_procedural", 3)])
def test_show_writes_a_png_grid(tmp_path, capsys, name, channels):
    from PIL import Image

    from gmgbench.harness import data as datasets

    out = tmp_path / "grid.png"
    code, text = run(["show", name, "--out", str(out)], capsys)
    assert code == 0 and f"wrote {out}" in text
    img = np.asarray(Image.open(out))
    n_factors = len(datasets.load(name).factor_sizes)
    assert img.shape == ((2 + n_factors) * 65 * 2, 10 * 65 * 2, 3)


def test_show_real_dataset_without_files_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(DatasetError, match="missing"):
        run(["show", "shapes3d", "--root", str(tmp_path)], capsys)


def test_main_prints_dataset_errors(tmp_path, capsys):
    from gmgbench.harness.cli import main

    assert main(["data", "show", "cars3d", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "gmgbench data: error: cars3d: missing folder" in err and "Traceback" not in err


def test_check_counts_cars_files(tmp_path, capsys):
    fmt.write_cars3d(tmp_path, np.random.RandomState(0), n_objects=2)
    code, out = run(["check", "cars3d", "--root", str(tmp_path)], capsys)
    assert code == 1 and "incomplete" in out and "2 .mat files, expected 183" in out
