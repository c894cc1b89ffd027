"""color / noisy / scream dSprites against disentanglement_lib's own classes.

The real variants read format-exact small files (a tiny dSprites npz, a JPEG at
``scream/scream.jpg``) with both loaders; the same RandomState must give the same factors,
the same float32 observations and the same RandomState afterwards. The procedural variants
are checked against dlib's recolouring code run on the procedural sprites.
"""
from __future__ import annotations

import re
import types

import numpy as np
import pytest
import torch
from dlib_reference import dlib

import data_formats as fmt
from gmgbench.harness import data as datasets
from gmgbench.harness.data import dsprites_variants as variants
from gmgbench.harness.data.base import DatasetError
from gmgbench.harness.data.dsprites_procedural import DSpritesProcedural

DLIB_CLASS = {"color": "ColorDSprites", "noisy": "NoisyDSprites", "scream": "ScreamDSprites"}
OURS = {"color": variants.ColorDSprites, "noisy": variants.NoisyDSprites, "scream": variants.ScreamDSprites}
PROCEDURAL = {"color": variants.ColorDSpritesProcedural, "noisy": variants.NoisyDSpritesProcedural,
              "scream": variants.ScreamDSpritesProcedural}


@pytest.fixture
def pil_thumbnail_3tuple(monkeypatch):
    """dlib calls thumbnail((350, 274, 3)); Pillow >= 10 wants a 2-tuple (test-only patch)."""
    from PIL import Image

    thumbnail = Image.Image.thumbnail
    monkeypatch.setattr(Image.Image, "thumbnail", lambda self, size, *a, **k: thumbnail(self, tuple(size[:2]), *a, **k))


def write_scream(root, size=(444, 548)):
    """A JPEG where dlib looks for the Scream: the procedural stand-in, enlarged so that
    ``thumbnail`` has to shrink it (as it shrinks the real painting)."""
    from PIL import Image

    path = root / "scream" / "scream.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.rint(variants.procedural_scream() * 255).astype(np.uint8)).resize(size, Image.BICUBIC)
    img.save(path, quality=90)
    return path


def _tiny(kind):
    class Tiny(OURS[kind]):
        factor_sizes = fmt.DSPRITES_SIZES

    return Tiny


def _compare(ours, ref_sample, num=32, seed=11, draws=3):
    rs_ours, rs_ref = np.random.RandomState(seed), np.random.RandomState(seed)
    for _ in range(draws):
        f_ours, x_ours = ours.sample(num, rs_ours)
        f_ref, x_ref = ref_sample(num, rs_ref)
        np.testing.assert_array_equal(f_ours, f_ref)
        assert x_ours.dtype == np.float32 and x_ours.shape == (num, 64, 64, 3)
        np.testing.assert_array_equal(x_ours, np.asarray(x_ref).astype(np.float32))
    assert rs_ours.randint(1 << 30) == rs_ref.randint(1 << 30)  # the same number of draws, in order
    return x_ours


@pytest.mark.parametrize("kind", ["color", "noisy", "scream"])
def test_real_variant_matches_dlib(tmp_path, monkeypatch, pil_thumbnail_3tuple, kind):
    _, npz = fmt.write_dsprites(tmp_path, np.random.RandomState(0))
    scream = write_scream(tmp_path)
    mod = dlib("data.ground_truth.dsprites")
    monkeypatch.setattr(mod, "DSPRITES_PATH", str(npz))
    monkeypatch.setattr(mod, "SCREAM_PATH", str(scream))
    ref = getattr(mod, DLIB_CLASS[kind])([1, 2, 3, 4, 5])  # named_data's `<kind>_dsprites`
    ours = _tiny(kind)(tmp_path)
    assert list(ref.observation_shape) == list(ours.observation_shape) == [64, 64, 3]
    x = _compare(ours, ref.sample)
    if kind == "scream":
        assert ours.scream.shape == ref.scream.shape and ours.scream.shape[0] == 274  # thumbnail to 274 rows
        np.testing.assert_array_equal(ours.scream, ref.scream)
    if kind == "color":
        assert x.min() == 0.0 and 0.5 <= x[x > 0].min() and x.max() <= 1.0  # black background, colours in [0.5, 1]
    if kind == "noisy":
        assert 0.0 < x.mean() < 1.0 and len(np.unique(x)) > 1000


@pytest.mark.parametrize("kind", ["color", "noisy", "scream"])
def test_procedural_variant_equals_dlib_recolouring_of_the_procedural_sprites(kind):
    mod = dlib("data.ground_truth.dsprites")
    base = DSpritesProcedural()
    ours = PROCEDURAL[kind]()
    # dlib's own sample_observations_from_factors, on an object whose binary sprites are ours
    stub = types.SimpleNamespace(sample_observations_from_factors_no_color=base.sample_observations_from_factors,
                                 scream=variants.procedural_scream())
    method = getattr(mod, DLIB_CLASS[kind]).sample_observations_from_factors

    def ref_sample(num, rs):
        factors = base.sample_factors(num, rs)
        return factors, method(stub, factors, rs)

    _compare(ours, ref_sample, num=24)


@pytest.mark.parametrize("name", ["color_dsprites_procedural", "noisy_dsprites_procedural", "scream_dsprites_procedural"])
def test_training_batch_is_the_observation_batch_in_the_same_rng_order(name):
    ds = datasets.load(name)
    assert ds.observation_shape == (64, 64, 3) and ds.factor_sizes == (3, 6, 40, 32, 32)
    rs_a, rs_b = np.random.RandomState(5), np.random.RandomState(5)
    factors = ds.sample_factors(16, rs_a)
    ds.sample_factors(16, rs_b)
    batch = ds.training_batch(factors, rs_a)
    obs = ds.sample_observations_from_factors(factors, rs_b)
    assert batch.shape == (16, 3, 64, 64) and batch.dtype == torch.float32
    np.testing.assert_array_equal(batch.permute(0, 2, 3, 1).numpy(), obs)
    assert rs_a.randint(1 << 30) == rs_b.randint(1 << 30)
    shown = ds.images(ds._all_factors(factors[:4], rs_a))
    assert shown.dtype == np.uint8 and shown.shape == (4, 64, 64, 3)


def test_scream_background_is_inverted_under_the_sprite():
    ds = variants.ScreamDSpritesProcedural()
    rs = np.random.RandomState(0)
    factors = np.array([[2, 5, 0, 16, 16]])
    mask = DSpritesProcedural().observations(factors)[0, :, :, 0] == 1
    x_crop, y_crop, colour = rs.randint(0, 274 - 64), rs.randint(0, 222 - 64), rs.uniform(0, 1, size=3)
    background = (ds.scream[x_crop:x_crop + 64, y_crop:y_crop + 64] + colour) / 2
    x = ds.sample_observations_from_factors(factors, np.random.RandomState(0))[0]
    np.testing.assert_array_equal(x[~mask], background[~mask].astype(np.float32))
    np.testing.assert_array_equal(x[mask], (1 - background[mask]).astype(np.float32))


def test_scream_needs_its_image_in_the_data_folder(tmp_path):
    fmt.write_dsprites(tmp_path, np.random.RandomState(0))
    with pytest.raises(DatasetError, match=r"scream_dsprites: missing file .*scream/scream\.jpg"):
        datasets.load("scream_dsprites", tmp_path)
    (tmp_path / "scream").mkdir()
    (tmp_path / "scream" / "scream.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=r"scream\.jpg: not a readable image"):
        datasets.load("scream_dsprites", tmp_path)


def test_scream_rejects_an_image_too_small_to_crop(tmp_path):
    from PIL import Image

    path = tmp_path / "small.jpg"
    Image.new("RGB", (60, 80)).save(path)
    with pytest.raises(DatasetError, match="more than 64×64 is needed"):
        variants.read_scream(path)


def test_variants_need_the_dsprites_file(tmp_path):
    with pytest.raises(DatasetError, match=r"color_dsprites: missing file .*dsprites_ndarray"):
        datasets.load("color_dsprites", tmp_path)


def test_data_check_lists_the_scream_image_beside_dsprites(tmp_path, capsys):
    from gmgbench.harness.cli import main

    fmt.write_dsprites(tmp_path, np.random.RandomState(0))
    assert main(["data", "check", "scream_dsprites", "--root", str(tmp_path), "--no-verify"]) == 1  # no image yet
    assert "scream_dsprites: 1/2 present" in capsys.readouterr().out
    write_scream(tmp_path)
    assert main(["data", "check", "scream_dsprites", "--root", str(tmp_path), "--no-verify"]) == 0
    out = capsys.readouterr().out
    assert "scream_dsprites: 2/2 present" in out and "scream/scream.jpg" in out
    # verified: the image has no published checksum (our fake npz fails dSprites' MD5, as it must)
    assert main(["data", "check", "scream_dsprites", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"unknown checksum +\S*scream/scream\.jpg", out) and "MISMATCH" in out


@pytest.mark.parametrize("name", ["noisy_dsprites_procedural", "scream_dsprites_procedural"])
def test_a_run_trains_on_a_variant(tmp_path, name):
    """RGB observations reach a 3-channel VAE through the ordinary loop, and resume exactly."""
    import yaml

    from gmgbench.harness.spec import load_spec
    from gmgbench.harness.train import Interrupted, train_run

    spec = {"name": "variant", "datasets": [name], "methods": [{"label": "bvae", "objective": "beta_vae"}],
            "seeds": 1, "train": {"steps": 3, "batch_size": 4, "checkpoint_every": 1, "log_every": 1, "num_threads": 1},
            "evaluation": {"metrics": {"mig": {"num_train": 32, "batch_size": 16}}},
            "leaderboard": {"selection": "mig.discrete_mig"}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    run = load_spec(path).runs()[0]
    done = train_run(run, tmp_path / "a", progress=False)
    assert done["steps"] == 3 and np.isfinite(done["final"]["loss"])
    with pytest.raises(Interrupted):
        train_run(run, tmp_path / "b", progress=False, stop_after=2)
    train_run(run, tmp_path / "b", progress=False)
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["model"]
    assert a["encoder.0.weight"].shape[1] == 3 and all(torch.equal(a[k], b[k]) for k in a)
