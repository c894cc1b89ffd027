"""Release figures exist, are PNGs, are not blank, and are linked from the markdown."""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from gmgbench.harness import leaderboard
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import EvaluationSpec, MethodSpec, RegulariserSpec, StudySpec
from lb_helpers import fill
from gmgbench.methods.architectures import VAE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _spec() -> StudySpec:
    return StudySpec(
        name="figs", path=None, datasets=(("dsprites_procedural", None),),
        methods=(MethodSpec("bvae", "beta_vae", {"beta": 1.0}),
                 MethodSpec("bvae+gmg", "beta_vae", {"beta": 1.0}, (RegulariserSpec("gmg", {"weight": 1.0}),))),
        seeds=(0, 1), train={"steps": 10, "latent_dim": 3}, evaluation=EvaluationSpec({"metrics": {"dci": {}}}))


def _save_tiny_models(store: ResultsStore, spec: StudySpec) -> None:
    # Saved the way gmgbench.harness.train does, so gmgbench.harness.checkpoints.load_model reads it.
    for run in spec.runs():
        torch.manual_seed(run.seed)
        model = VAE(num_channels=1, latent_dim=run.train.latent_dim)
        path = store.model_path(run.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "run": run.to_dict()}, path)


def _check_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert img.shape[0] > 50 and img.shape[1] > 50, path
    assert img.std() > 1.0, f"{path} is blank"


def test_release_figures_are_nonempty_pngs_linked_from_the_markdown(tmp_path):
    spec = _spec()
    store = ResultsStore(tmp_path / "results")
    fill(store, spec, lambda run: {"dci.disentanglement": 0.3 + 0.1 * run.seed + (0.2 if "gmg" in run.method else 0)})
    _save_tiny_models(store, spec)
    v1 = leaderboard.publish(spec, store, root=tmp_path / "lb")
    m = json.loads((v1 / "manifest.json").read_text())
    kinds = sorted(f["kind"] for f in m["figures"])
    assert kinds == ["curves", "reconstruction", "reconstruction", "selection", "traversal", "traversal"]
    assert m["figure_notes"] == []
    md = (v1 / "leaderboard.md").read_text()
    for f in m["figures"]:
        _check_png(v1 / f["path"])
        assert f["path"] in md
        assert m["files"][f["path"]]
    # The shown model is the seed nearest the median: with two seeds, the lower one.
    assert {f["seed"] for f in m["figures"] if f["kind"] == "traversal"} == {0}
    assert leaderboard.verify(v1) == (True, "")


def test_missing_models_are_noted_not_fatal(tmp_path):
    spec = _spec()
    store = ResultsStore(tmp_path / "results")
    fill(store, spec, lambda run: {"dci.disentanglement": 0.5})
    v1 = leaderboard.publish(spec, store, root=tmp_path / "lb")
    m = json.loads((v1 / "manifest.json").read_text())
    assert sorted(f["kind"] for f in m["figures"]) == ["curves", "selection"]
    assert len(m["figure_notes"]) == 2 and "model.pt of run" in m["figure_notes"][0]
    md = (v1 / "leaderboard.md").read_text()
    assert "model.pt of run" in md
    for f in m["figures"]:
        _check_png(v1 / f["path"])


def test_dataset_without_results_gets_a_note_instead_of_empty_figures(tmp_path):
    spec = _spec()
    v1 = leaderboard.publish(spec, ResultsStore(tmp_path / "empty"), root=tmp_path / "lb")
    m = json.loads((v1 / "manifest.json").read_text())
    assert m["figures"] == []
    assert m["figure_notes"] == ["dsprites_procedural: no finished run with a dci.disentanglement value, so no figures"]
    assert leaderboard.verify(v1) == (True, "")
