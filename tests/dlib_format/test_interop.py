"""disentanglement_lib interop with real TensorFlow: export → dlib's loading and evaluation,
dlib-built modules → our importer and leaderboards, bad inputs → one line each."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from harness import cli
from harness.dlib_format import hub
from harness.dlib_format.errors import DlibFormatError
from harness.dlib_format.importer import module_representation

TOL = 1e-5  # representations: TF and torch kernels sum in different orders


def _images(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).rand(n, 64, 64, channels).astype(np.float32)


def _torch_means(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.encode(torch.from_numpy(x).permute(0, 3, 1, 2))[0].numpy()


# -- export ----------------------------------------------------------------------------------
def test_export_writes_dlibs_layout_and_refuses_to_overwrite(trained, exported, tmp_path, capsys):
    spec_path, store, run_id, _ = trained
    for rel in ("tfhub/tfhub_module.pb", "tfhub/saved_model.pb", "tfhub/variables/variables.index",
                "results/gin/train.gin", "results/json/train_config.json", "results/aggregate/train.json",
                "postprocessed/mean/tfhub/tfhub_module.pb", "postprocessed/mean/results/gin/postprocess.gin",
                "postprocessed/mean/results/gin/train.gin", "postprocessed/mean/results/aggregate/postprocess.json"):
        assert (exported / rel).is_file(), rel
    gin = (exported / "results" / "gin" / "train.gin").read_text()
    assert "dataset.name = 'dsprites_procedural'" in gin and "vae.beta = 2.0" in gin and f"'{run_id}'" in gin
    config = json.loads((exported / "postprocessed/mean/results/aggregate/postprocess.json").read_text())
    assert config["postprocess_config.postprocess.postprocess_fn"] == "@mean_representation"
    assert config["train_config.dataset.name"] == "'dsprites_procedural'"
    manifest = json.loads((exported / "gmgbench_export.json").read_text())
    assert manifest["tfhub_sha256"] == hub.module_checksum(exported / "tfhub")
    assert manifest["check"]["max_abs_diff_mean"] <= TOL
    before = hub.module_checksum(exported / "tfhub")
    assert cli.main(["export-dlib", run_id, str(exported), "--results", str(store.root)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err and str(exported) in err
    assert hub.module_checksum(exported / "tfhub") == before
    assert cli.main(["export-dlib", "0123456789abcdef", str(tmp_path / "x"), "--results", str(store.root)]) == 1
    assert "no trained model" in capsys.readouterr().err


def test_exported_signatures_carry_the_weights_exactly(trained, exported, tf):
    _, _, _, model = trained
    x = _images(100, seed=1)
    want = _torch_means(model, x)
    sigs = hub.load_signatures(exported / "tfhub", ("gaussian_encoder", "decoder", "reconstructions"))
    out = sigs["gaussian_encoder"](images=tf.constant(x))
    with torch.no_grad():
        mu, logvar = model.encode(torch.from_numpy(x).permute(0, 3, 1, 2))
        logits = model.decode(mu).permute(0, 2, 3, 1).numpy()
    assert np.abs(out["mean"].numpy() - want).max() <= TOL
    assert np.abs(out["logvar"].numpy() - logvar.numpy()).max() <= TOL
    decoded = sigs["decoder"](latent_vectors=tf.constant(mu.numpy()))["images"].numpy()
    assert decoded.shape == (100, 64, 64, 1) and np.abs(decoded - logits).max() <= 1e-4
    assert sigs["reconstructions"](images=tf.constant(x))["images"].shape == (100, 64, 64, 1)
    rep = hub.load_signatures(exported / "postprocessed/mean/tfhub", ("representation",))["representation"]
    assert np.abs(rep(images=tf.constant(x))["default"].numpy() - want).max() <= TOL


@pytest.mark.slow
def test_dlibs_own_loading_code_reads_our_export(trained, exported, dlib_side, tmp_path):
    """hub.eval_function_for_module (TF 2.15, tensorflow-hub 0.15) on both exported modules."""
    _, _, _, model = trained
    x = _images(100, seed=2)
    np.save(tmp_path / "x.npy", x)
    want = _torch_means(model, x)
    ours = module_representation(exported / "tfhub", (64, 64, 1), batch_size=32)(x)
    dlib_side("represent", exported / "tfhub", "gaussian_encoder", "mean", tmp_path / "x.npy", tmp_path / "enc.npy")
    dlib_side("represent", exported / "postprocessed/mean/tfhub", "representation", "default", tmp_path / "x.npy",
              tmp_path / "rep.npy")
    for theirs in (np.load(tmp_path / "enc.npy"), np.load(tmp_path / "rep.npy")):
        assert theirs.shape == want.shape
        assert np.abs(theirs - want).max() <= TOL
        assert np.abs(theirs - ours).max() <= TOL


@pytest.mark.slow
def test_dlibs_evaluate_scores_our_export_as_we_do(trained, exported, dlib_side, tmp_path):
    """dlib's evaluate.evaluate_with_gin on postprocessed/mean equals metrics.evaluate on the torch model.

    On dlib's own dummy_data (its only dataset that needs no files and our exports can be
    scored on): codes then come from the same RandomState calls on both sides. MIG and the
    unsupervised scores (total correlation, Wasserstein correlation, mutual information of the
    codes): the latter see every code value, not only which factor it predicts.
    """
    import dlib_reference

    import metrics
    from harness import train

    _, _, _, model = trained
    settings = {"mig": {"num_train": 1000}, "unsupervised": {"num_train": 1000}}
    discretizer = ["discretizer.discretizer_fn = @histogram_discretizer", "discretizer.num_bins = 20"]
    bindings = {"mig": ["evaluation.evaluation_fn = @mig", "mig.num_train = 1000", *discretizer],
                "unsupervised": ["evaluation.evaluation_fn = @unsupervised_metrics",
                                 "unsupervised_metrics.num_train = 1000", *discretizer]}
    dummy = dlib_reference.dlib("data.ground_truth.dummy_data").DummyData()
    encode = train.representation_function(model)
    # dummy_data's images are float64 noise; dlib's session feed casts them to float32 too.
    ours = metrics.evaluate(dummy, lambda x: encode(x.astype(np.float32)), settings, random_seed=0)
    # The same module through our importer (TensorFlow 2.21 kernels; dlib runs 2.15's).
    via_tf = metrics.evaluate(dummy, module_representation(exported / "postprocessed/mean/tfhub", (64, 64, 1)),
                              settings, random_seed=0)
    for name, extra in bindings.items():
        out = tmp_path / name
        dlib_side("evaluate", exported / "postprocessed" / "mean", out, "evaluation.random_seed = 0",
                  "dataset.name = 'dummy_data'", *extra)
        theirs = json.loads((out / "results" / "json" / "evaluation_results.json").read_text())
        for key in ours[name]:
            # Codes from torch, TF 2.21 and TF 2.15 agree to ~1e-7 (different kernels), so the
            # scores of discretised codes (MIG, mutual information) agree to rounding, and the
            # Gaussian code statistics to ~1e-7 relative. Identical codes give identical
            # numbers (docs/metrics.md's conformance tests).
            discrete = key in ("discrete_mig", "mutual_info_score")
            for mine in (ours[name][key], via_tf[name][key]):
                assert theirs[key] == pytest.approx(mine, rel=1e-12 if discrete else 1e-5, abs=1e-15), (name, key)
        aggregate = json.loads((out / "results" / "aggregate" / "evaluation.json").read_text())
        assert aggregate["train_config.gmgbench.run_id"] == repr(trained[2])


# -- import ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dlib_built(tmp_path_factory, dlib_side):
    """A module built by dlib's own export code (conv_encoder/deconv_decoder, hub.create_module_spec)."""
    folder = tmp_path_factory.mktemp("dlib") / "0"
    dlib_side("build", folder, "--channels", "1", "--latent", "10", "--seed", "3", "--dataset", "dsprites_procedural")
    return folder


@pytest.mark.slow
def test_importer_reads_a_dlib_built_module_as_dlib_does(dlib_built, dlib_side, tmp_path, tf):
    x = _images(100, seed=4)
    np.save(tmp_path / "x.npy", x)
    dlib_side("represent", dlib_built / "tfhub", "gaussian_encoder", "mean", tmp_path / "x.npy", tmp_path / "m.npy")
    theirs = np.load(tmp_path / "m.npy")
    ours = module_representation(dlib_built / "tfhub", (64, 64, 1), batch_size=7)(x)  # batching must not matter
    assert ours.shape == (100, 10) and np.abs(ours).max() > 1e-3
    assert np.abs(ours - theirs).max() <= TOL
    sigs = hub.load_signatures(dlib_built / "tfhub")
    assert set(sigs) == {"gaussian_encoder", "decoder", "reconstructions"}
    assert sigs["decoder"].inputs["latent_vectors"].shape.as_list() == [None, 10]


@pytest.mark.slow
def test_import_dlib_puts_the_model_on_the_leaderboard(trained, dlib_built, tmp_path, capsys):
    from harness import leaderboard
    from harness.spec import load_spec

    spec_path, store, _, _ = trained
    assert cli.main(["import-dlib", str(dlib_built), "--study", str(spec_path), "--results", str(store.root),
                     "--name", "dlib-vae-0"]) == 0
    out = capsys.readouterr().out
    checksum = hub.module_checksum(dlib_built / "tfhub")
    assert checksum in out
    (path,) = (store.root / "external").glob("ext-*.json")
    result = json.loads(path.read_text())
    assert result["external"]["module_sha256"] == checksum
    assert result["external"]["representation"] == "gaussian_encoder/mean"
    assert result["config"]["dataset"] == "dsprites_procedural"  # read from the model's train.gin
    assert 0 <= result["metrics"]["mig"]["discrete_mig"] <= 1
    board = leaderboard.build(load_spec(spec_path), store)
    rows = board.agg.runs.set_index("method")
    assert rows.loc["dlib-vae-0 (external)", "status"] == "done"
    assert rows.loc["dlib-vae-0 (external)", "setting"] == f"tfhub sha256:{checksum[:12]}"
    assert rows.loc["dlib-vae-0 (external)", "mig.discrete_mig"] == result["metrics"]["mig"]["discrete_mig"]
    assert "dlib-vae-0 (external)" in board.markdown and "bvae" in board.markdown
    assert "entries marked *(external)* were trained elsewhere" in board.markdown
    # Importing again is refused (the stored result is kept) unless --force.
    assert cli.main(["import-dlib", str(dlib_built), "--study", str(spec_path), "--results", str(store.root),
                     "--name", "dlib-vae-0"]) == 1
    assert "--force" in capsys.readouterr().err and json.loads(path.read_text()) == result


@pytest.mark.slow
def test_study_external_entries_are_evaluated_by_run(trained, dlib_built, tmp_path, capsys):
    from harness import leaderboard
    from harness.spec import load_spec

    spec_path, store, _, _ = trained
    raw = yaml.safe_load(spec_path.read_text())
    raw["external"] = [{"name": "zoo-0", "path": str(dlib_built), "dataset": "dsprites_procedural"},
                       {"name": "zoo-missing", "path": str(tmp_path / "nowhere"), "dataset": "dsprites_procedural"}]
    spec2 = tmp_path / "with-external.yaml"
    spec2.write_text(yaml.safe_dump(raw))
    assert cli.main(["run", str(spec2), "--results", str(store.root), "--no-leaderboard"]) == 1  # one is missing
    out = capsys.readouterr().out
    assert "done    zoo-0 (external)" in out and "failed  zoo-missing (external)" in out and "nowhere" in out
    runs = leaderboard.build(load_spec(spec2), store).agg.runs.set_index("method")
    assert runs.loc["zoo-0 (external)", "status"] == "done"
    assert runs.loc["zoo-missing (external)", "status"] == "missing"


# -- bad inputs ------------------------------------------------------------------------------
def _toy_module(path, tf, *, size=64, channels=1, signatures=("gaussian_encoder",)):
    """A minimal module: images → flatten → dense → mean/logvar, under the given signatures."""
    v1 = tf.compat.v1

    def build(is_training):
        images = v1.placeholder(tf.float32, [None, size, size, channels], name="images")
        w = v1.get_variable("w", [size * size * channels, 4], initializer=v1.zeros_initializer())
        mean = tf.matmul(tf.reshape(images, [-1, size * size * channels]), w)
        latent = v1.placeholder(tf.float32, [None, 4], name="latent_vectors")
        decoded = tf.reshape(tf.matmul(latent, w, transpose_b=True), [-1, size, size, channels])
        sigs = {"gaussian_encoder": ({"images": images}, {"mean": mean, "logvar": mean}),
                "representation": ({"images": images}, {"default": mean}),
                "decoder": ({"latent_vectors": latent}, {"images": decoded})}
        return {k: sigs[k] for k in signatures}

    rng = np.random.RandomState(0)
    hub.write_module(path / "tfhub", build, {"w": rng.normal(size=(size * size * channels, 4))})
    return path


def _one_line_error(capsys, argv) -> str:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


def test_bad_inputs_are_one_line_naming_what_is_wrong(tmp_path, capsys, tf):
    store = ["--results", str(tmp_path / "store"), "--dataset", "dsprites_procedural"]
    (tmp_path / "empty").mkdir()
    err = _one_line_error(capsys, ["import-dlib", str(tmp_path / "empty"), *store])
    assert "no tfhub/ folder" in err and str(tmp_path / "empty") in err

    _toy_module(tmp_path / "nosig", tf, signatures=("decoder",))
    err = _one_line_error(capsys, ["import-dlib", str(tmp_path / "nosig"), *store])
    assert "neither a 'gaussian_encoder' nor a 'representation' signature (it has: decoder)" in err

    _toy_module(tmp_path / "small", tf, size=32)
    err = _one_line_error(capsys, ["import-dlib", str(tmp_path / "small"), *store])
    assert "takes 32×32 images, the dataset has 64×64" in err

    _toy_module(tmp_path / "rgb", tf, channels=3)
    err = _one_line_error(capsys, ["import-dlib", str(tmp_path / "rgb"), *store])
    assert "takes images with 3 channel(s), the dataset has 1" in err

    (tmp_path / "broken" / "tfhub").mkdir(parents=True)
    (tmp_path / "broken" / "tfhub" / "saved_model.pb").write_bytes(b"not a protobuf")
    err = _one_line_error(capsys, ["import-dlib", str(tmp_path / "broken"), *store])
    assert "TensorFlow cannot load this module" in err and "broken" in err

    err = _one_line_error(capsys, ["import-dlib", str(tmp_path / "rgb"), "--results", str(tmp_path / "store")])
    assert "names the dataset; pass --dataset" in err
    assert not (tmp_path / "store" / "external").exists()  # nothing written by any failure


def test_a_representation_only_module_is_read_through_its_default_output(tmp_path, tf):
    _toy_module(tmp_path / "rep", tf, signatures=("representation",))
    f = module_representation(tmp_path / "rep" / "tfhub", (64, 64, 1))
    x = _images(5)
    assert f.signature == "representation/default" and f(x).shape == (5, 4)


def test_write_module_refuses_an_existing_folder(tmp_path, tf):
    _toy_module(tmp_path / "m", tf)
    with pytest.raises(DlibFormatError, match="already exists"):
        _toy_module(tmp_path / "m", tf)
