"""Run callbacks: called in order, registered by spec, entry point or CLI; TensorBoard's events."""
from __future__ import annotations

import sys
import textwrap
from importlib import metadata

import pytest

from gmgbench.harness import callbacks, cli
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import SpecError, load_spec
from gmgbench.harness.train import run_and_store

PLUGIN = textwrap.dedent("""
    CALLS = []

    class Recorder:
        def __init__(self, run, workdir, tag="x"):
            self.tag = tag
            CALLS.append(("init", run.run_id, tag))

        def on_run_start(self, step):
            CALLS.append(("start", step))

        def on_step(self, step, logs):
            CALLS.append(("step", step, "loss" in logs))

        def on_log(self, step, point):
            CALLS.append(("log", step, point["step"]))

        def on_eval(self, metric, index, count):
            CALLS.append(("eval", metric, index, count))

        def on_run_end(self, result):
            CALLS.append(("end", sorted(result["metrics"])))

        def close(self):
            CALLS.append(("close",))

    class Broken:
        def __init__(self, run, workdir):
            pass

        def on_log(self, step, point):
            raise RuntimeError("tracker offline")
""")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "tracker_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("tracker_plugin", None)
    import tracker_plugin

    yield tracker_plugin
    sys.modules.pop("tracker_plugin", None)


def test_spec_callback_sees_the_whole_run_in_order(write_spec, tiny_spec, tmp_path, plugin):
    tiny_spec["callbacks"] = [{"name": "tracker_plugin:Recorder", "params": {"tag": "t1"}}]
    spec = load_spec(write_spec(tiny_spec))
    run = spec.runs()[0]
    result = run_and_store(run, ResultsStore(tmp_path / "store"), progress=False, callbacks=spec.callbacks)
    calls = plugin.CALLS
    steps = run.train.steps
    assert calls[0] == ("init", run.run_id, "t1") and calls[1] == ("start", 0)
    assert [c for c in calls if c[0] == "step"] == [("step", s, True) for s in range(1, steps + 1)]
    assert [c for c in calls if c[0] == "log"] == [("log", s, s) for s in range(1, steps + 1)]  # log_every 1
    assert [c for c in calls if c[0] == "eval"] == [("eval", "mig", 0, 1)]
    assert calls[-2:] == [("end", ["mig"]), ("close",)]
    assert result["metrics"]["mig"]


def test_callbacks_do_not_change_run_ids(write_spec, tiny_spec, plugin):
    plain = [r.run_id for r in load_spec(write_spec(tiny_spec, "a.yaml")).runs()]
    tiny_spec["callbacks"] = ["tensorboard", "tracker_plugin:Recorder"]
    assert [r.run_id for r in load_spec(write_spec(tiny_spec, "b.yaml")).runs()] == plain


def test_a_failing_tracker_is_switched_off_and_the_run_is_kept(write_spec, tiny_spec, tmp_path, plugin, caplog):
    spec = load_spec(write_spec(tiny_spec))
    store = ResultsStore(tmp_path / "store")
    run = spec.runs()[0]
    run_and_store(run, store, progress=False, callbacks=(("tracker_plugin:Broken", {}),))
    assert store.has_result(run.run_id)
    assert "tracker offline" in caplog.text and "switched off" in caplog.text


def test_entry_point_callbacks_are_found(monkeypatch, plugin):
    ep = metadata.EntryPoint(name="recorder", value="tracker_plugin:Recorder", group=callbacks.ENTRY_POINT_GROUP)
    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points",
                        lambda **kw: [ep] if kw.get("group") == callbacks.ENTRY_POINT_GROUP else real(**kw))
    assert callbacks.resolve("recorder") is plugin.Recorder


@pytest.mark.parametrize("entry, message", [
    ("nope", "callbacks[0]: unknown callback 'nope'; known: tensorboard"),
    ("no_such_module:X", "cannot import no_such_module:X"),
    ({"name": "tensorboard", "parms": {}}, "a callback is a name or {name: NAME, params: {...}}"),
])
def test_bad_callbacks_name_the_key(write_spec, tiny_spec, entry, message):
    tiny_spec["callbacks"] = [entry]
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tiny_spec))
    assert message in str(err.value) and "study.yaml" in str(err.value)


def test_tensorboard_is_off_by_default(write_spec, tiny_spec, tmp_path):
    tiny_spec["seeds"] = 1
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    path = write_spec(tiny_spec)
    assert cli.main(["run", str(path), "--results", str(tmp_path / "store"), "--no-leaderboard", "-q"]) == 0
    assert not list((tmp_path / "store").rglob("events.out.tfevents*"))


def test_tensorboard_logs_every_curve_metrics_and_health(write_spec, tiny_spec, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tiny_spec["seeds"] = 1
    tiny_spec["train"].update(steps=6, health_every=2)
    tiny_spec["methods"] = [{"label": "gmg", "objective": "beta_vae",
                             "regularisers": [{"name": "gmg", "params": {"weight": 1.0}}]}]
    path = write_spec(tiny_spec)
    store = tmp_path / "store"
    assert cli.main(["run", str(path), "--results", str(store), "--no-leaderboard", "-q", "--tensorboard"]) == 0
    (run,) = load_spec(path).runs()
    logdir = store / "work" / run.run_id / "tensorboard"
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    result = ResultsStore(store).read_result(run.run_id)
    for key in result["training"]["curve"][0]:
        if key != "step":
            assert f"train/{key}" in scalars, key  # every curve value
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 7))
    losses = [e.value for e in acc.Scalars("train/loss")]
    assert losses == pytest.approx([p["loss"] for p in result["training"]["curve"]], rel=1e-6)
    assert acc.Scalars("metrics/mig.discrete_mig")[0].value == pytest.approx(result["metrics"]["mig"]["discrete_mig"])
    share = acc.Scalars("health/gmg/grad_share")
    assert [e.step for e in share] == [p[0] for p in result["health"]["terms"]["gmg"]["series"]]
    assert "health/grad_share" in acc.Tags()["images"]  # the health figure


def test_an_unknown_cli_callback_is_one_line_before_training(write_spec, tiny_spec, tmp_path, capsys):
    rc = cli.main(["run", str(write_spec(tiny_spec)), "--results", str(tmp_path / "store"), "--callback", "wandb"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err == "gmgbench run: error: unknown callback 'wandb'; known: tensorboard (or give module:attr)"
    assert not (tmp_path / "store").exists()
