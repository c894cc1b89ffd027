"""disentanglement_lib interop with real TensorFlow: export → dlib's loading and evaluation,
dlib-built modules → our importer and leaderboards, bad inputs → one line each."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from gmgbench.harness import cli
from gmgbench.harness.dlib_format import hub
from gmgbench.harness.dlib_format.errors import DlibFormatError
from gmgbench.harness.dlib_format.importer import module_representation

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


def _bin_edge_tolerance(codes: np.ndarray, score, num_bins: int = 20, delta: float = TOL) -> tuple[int, float]:
    """How far a histogram-discretised score can move when every code moves by at most ``delta``.

    dlib's discretiser puts each code dimension on ``num_bins`` equal-width bins between its
    min and max. A code moved by ≤ ``delta`` (and edges that move by ≤ ``delta`` with the min
    and max) changes bin only if it lies within ``2·delta`` of an interior edge. For each such
    code the score is recomputed with that code pushed across its edge; the bound is twice the
    sum of those single-move changes (each move changes one joint count by 1 of N, so moves
    interact only at second order; the factor 2 covers that). Returns (codes at risk, bound).
    """
    base = score(codes)
    total, at_risk = 0.0, 0
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], num_bins)[1][1:-1]  # the interior edges np.digitize uses
        near = np.abs(codes[:, d, None] - edges[None, :]) <= 2 * delta
        for i, k in zip(*np.nonzero(near)):
            moved = codes.copy()
            moved[i, d] = edges[k] + (-4 * delta if codes[i, d] >= edges[k] else 4 * delta)
            total += abs(score(moved) - base)
            at_risk += 1
    return at_risk, 2 * total


def test_bin_edge_tolerance_is_zero_away_from_edges_and_bounds_a_real_move():
    """The bound the interop test relies on: 0 when no code can change bin, and at least the
    change that moving a code across its edge really causes."""
    from gmgbench.metrics.mig import mig_from_codes

    rs = np.random.RandomState(0)
    codes = rs.rand(400, 2)
    factors = np.stack([(codes[:, 0] * 3).astype(int), rs.randint(0, 3, 400)], axis=1)
    score = lambda c: mig_from_codes(c, factors)["discrete_mig"]  # noqa: E731
    assert _bin_edge_tolerance(codes, score, delta=1e-12) == (0, 0.0)
    edges = np.histogram(codes[:, 0], 20)[1]
    codes[7, 0] = edges[5] + 1e-9  # just above an interior edge
    at_risk, bound = _bin_edge_tolerance(codes, score, delta=1e-8)
    moved = codes.copy()
    moved[7, 0] = edges[5] - 1e-9
    assert at_risk == 1 and 0 < abs(score(moved) - score(codes)) <= bound


@pytest.mark.slow
def test_dlibs_evaluate_scores_our_export_as_we_do(trained, exported, dlib_side, tmp_path):
    """dlib's evaluate.evaluate_with_gin on postprocessed/mean against metrics.evaluate.

    On dlib's own dummy_data (its only dataset that needs no files and our exports can be
    scored on): codes then come from the same RandomState calls on both sides. MIG and the
    unsupervised scores (total correlation, Wasserstein correlation, mutual information of the
    codes): the latter see every code value, not only which factor it predicts.

    What holds on any CPU:
    * identical codes give identical scores: dlib's own MIG and unsupervised functions fed the
      very codes our evaluation computed equal ours to rounding (rel 1e-12);
    * across kernels (torch, TF 2.21 through our importer, TF 2.15 inside dlib) the codes agree to
      ``TOL`` (asserted by the export tests above), which moves the Gaussian code statistics by
      ~``TOL`` relative, and moves a discretised score (MIG, mutual information) only through
      codes within ``2·TOL`` of a histogram edge: the allowed difference is the bound of
      ``_bin_edge_tolerance`` on our codes (exact when no code is that close). The rel 1e-12
      this replaced failed on an AVX2-only EPYC: one code crossed an edge, MIG moved by 1.7e-5.
    """
    import dlib_reference

    from gmgbench import metrics
    from gmgbench.harness import evaluation
    from gmgbench.metrics import sampling
    from gmgbench.metrics.mig import mig_from_codes
    from gmgbench.metrics.unsupervised import unsupervised_from_codes

    _, _, _, model = trained
    settings = {"mig": {"num_train": 1000}, "unsupervised": {"num_train": 1000}}
    discretizer = ["discretizer.discretizer_fn = @histogram_discretizer", "discretizer.num_bins = 20"]
    bindings = {"mig": ["evaluation.evaluation_fn = @mig", "mig.num_train = 1000", *discretizer],
                "unsupervised": ["evaluation.evaluation_fn = @unsupervised_metrics",
                                 "unsupervised_metrics.num_train = 1000", *discretizer]}
    dummy = dlib_reference.dlib("data.ground_truth.dummy_data").DummyData()
    encode = evaluation.representation_function(model)

    def rep(x):  # dummy_data's images are float64 noise; dlib's session feed casts them to float32 too
        return encode(x.astype(np.float32))

    ours = metrics.evaluate(dummy, rep, settings, random_seed=0)
    # The very codes and factors our evaluation scored (each metric starts from RandomState(0)).
    codes, factors = sampling.checked_codes(dummy, rep, np.random.RandomState(0), 1000, 16)
    assert mig_from_codes(codes, factors) == ours["mig"]
    # Identical inputs: dlib's own functions on our codes give our numbers.
    dlib_reference.bind_study_defaults()
    dlib_mig = dlib_reference.dlib("evaluation.metrics.mig")._compute_mig(codes.T, factors.T)
    assert dlib_mig["discrete_mig"] == pytest.approx(ours["mig"]["discrete_mig"], rel=1e-12, abs=1e-15)
    dlib_unsup = dlib_reference.dlib("evaluation.metrics.unsupervised_metrics").unsupervised_metrics(
        dummy, rep, np.random.RandomState(0), num_train=1000)
    for key, value in ours["unsupervised"].items():
        assert dlib_unsup[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key

    # Across kernels: the discretised scores may move only as far as codes near an edge allow.
    allowed = {
        "discrete_mig": _bin_edge_tolerance(codes, lambda c: mig_from_codes(c, factors)["discrete_mig"]),
        "mutual_info_score": _bin_edge_tolerance(codes, lambda c: unsupervised_from_codes(c)["mutual_info_score"]),
    }
    # The same module through our importer (TensorFlow 2.21 kernels; dlib runs 2.15's).
    via_tf = metrics.evaluate(dummy, module_representation(exported / "postprocessed/mean/tfhub", (64, 64, 1)),
                              settings, random_seed=0)
    for name, extra in bindings.items():
        out = tmp_path / name
        dlib_side("evaluate", exported / "postprocessed" / "mean", out, "evaluation.random_seed = 0",
                  "dataset.name = 'dummy_data'", *extra)
        theirs = json.loads((out / "results" / "json" / "evaluation_results.json").read_text())
        assert set(theirs) >= set(ours[name]), name
        for key in ours[name]:
            for other in (theirs[key], via_tf[name][key]):
                if key in allowed:
                    at_risk, bound = allowed[key]
                    assert abs(other - ours[name][key]) <= bound + 1e-12 * abs(ours[name][key]), \
                        (name, key, at_risk, bound)
                else:  # Gaussian statistics of codes that agree to TOL
                    assert other == pytest.approx(ours[name][key], rel=10 * TOL, abs=1e-12), (name, key)
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
    from gmgbench.harness import leaderboard
    from gmgbench.harness.spec import load_spec

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
    from gmgbench.harness import leaderboard
    from gmgbench.harness.spec import load_spec

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
