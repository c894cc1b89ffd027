"""The committed study specs never rot: each loads, and the CPU reproduction runs end to end."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gmgbench.harness import leaderboard
from gmgbench.harness.executors import run_local
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec, parse_spec

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_spec_loads_and_expands(path):
    spec = load_spec(path)
    runs = spec.runs()
    assert runs and len({r.run_id for r in runs}) == len(runs)
    leaderboard.Options.from_spec(spec)


def test_paper_study_has_the_protocol():
    spec = load_spec(STUDIES[0].parent / "paper.yaml")
    assert {d for d, _ in spec.datasets} == {"shapes3d", "dsprites_full", "smallnorb", "cars3d"}
    assert spec.seeds == tuple(range(10))
    runs = spec.runs()
    assert {r.train.steps for r in runs} == {300_000} and {r.train.batch_size for r in runs} == {64}
    regs = {(name, p.get("cost"), p.get("side")) for r in runs for name, p in r.regularisers}
    for reg in ("dst", "gmg"):
        for cost in ("l2sq", "scl2sq", "cos"):
            for side in ("encoder", "decoder"):
                assert (reg, cost, side) in regs
    assert {r.objective for r in runs} == {"beta_vae", "beta_tcvae"}
    assert any(name == "jacobian" for r in runs for name, _ in r.regularisers)
    assert any(name == "hfs" for r in runs for name, _ in r.regularisers)


@pytest.mark.slow
def test_cpu_repro_shrunk_runs_end_to_end(tmp_path, monkeypatch):
    """The pre-registered v3 design end to end, shrunk: one twin, three methods at fixed λ,
    every seed judged, the two claims on the board with their minimum detectable effect."""
    path = STUDIES[0].parent / "cpu-repro.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["train"].update(steps=2, batch_size=16, checkpoint_every=1, log_every=1)
    raw["seeds"] = 3
    raw["evaluation"]["metrics"] = {m: {k: (64 if k == "num_train" else 32) for k in kw if k.startswith("num_")}
                                    for m, kw in raw["evaluation"]["metrics"].items()}
    spec = parse_spec(raw, path)
    store = ResultsStore(tmp_path / "store")
    outcomes = run_local(spec.runs(), store, workers=1, progress=False)
    # 1 dataset x (beta-VAE, + DST, + GMG at one lambda each) x 3 seeds
    assert [o.status for o in outcomes] == ["done"] * len(spec.runs()) == ["done"] * 9
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    vdir = leaderboard.publish(spec, store, figures=False)
    md = (vdir / "leaderboard.md").read_text()
    assert "## Claims" in md and "GMG beats DST (cosine, decoder)" in md and "GMG improves beta-VAE" in md
    assert "MDE (80 %)" in md and "selected on held-out seeds" not in md
    assert leaderboard.verify(vdir)[0]
