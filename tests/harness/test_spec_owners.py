"""Issue 28: each section of a study spec is checked by its owner, through a registry that
spec.py calls without importing upward; every check and default is written once; a run's
Configs are built once and travel with it."""
from __future__ import annotations

import ast
import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from gmgbench.harness import spec as spec_mod
from gmgbench.harness.leaderboard.options import Options
from gmgbench.harness.sections import DEFAULT_SELECTION, LeaderboardSpec
from gmgbench.harness.spec import SECTIONS, Sections, SpecError, load_spec

ROOT = Path(__file__).resolve().parents[2]
# The modules that make up the study spec; none may import an owner of a section.
SPEC_MODULES = ("spec.py", "spec_values.py", "spec_methods.py", "run_spec.py", "sections.py")
OWNER_PACKAGES = ("gmgbench.harness.leaderboard", "gmgbench.harness.slurm", "gmgbench.harness.dlib_format",
                  "gmgbench.harness.callbacks", "gmgbench.harness.spec_sections", "gmgbench.harness.cli")


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, inside functions too (``from a import b`` counts as a.b)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


@pytest.mark.parametrize("name", SPEC_MODULES)
def test_the_spec_imports_no_owner_of_a_section(name):
    bad = sorted(m for m in _imported(ROOT / "harness" / name)
                 if any(m == o or m.startswith(o + ".") for o in OWNER_PACKAGES))
    assert bad == [], f"harness/{name} imports {bad}: a section's owner registers its check instead"


def test_a_library_user_gets_every_owners_check_without_the_cli():
    """A fresh interpreter that imports only the spec module has the owners registered."""
    out = subprocess.run([sys.executable, "-c", "from gmgbench.harness.spec import SECTIONS; import sys; "
                          "print([k for k, _ in SECTIONS], 'gmgbench.harness.cli' in sys.modules)"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.stdout.strip() == "['callbacks', 'external', 'resources', 'leaderboard'] False", out.stderr


def test_the_checks_come_from_the_registry(write_spec, tiny_spec):
    tiny_spec["leaderboard"]["digits"] = 20
    tiny_spec["callbacks"] = "tensorboard"
    path = write_spec(tiny_spec)
    with pytest.raises(SpecError, match=r": callbacks: a list of callback names"):
        load_spec(path)
    only_leaderboard = Sections()
    only_leaderboard.register("leaderboard", dict(SECTIONS)["leaderboard"])
    with pytest.raises(SpecError, match=r": leaderboard.digits: expected 0..10, got 20"):
        load_spec(path, sections=only_leaderboard)
    spec = load_spec(path, sections=Sections())  # no owner: their sections are kept as written, unchecked
    assert spec.leaderboard.options is None and spec.callbacks == ()


def test_a_section_has_one_owner():
    sections = Sections()
    sections.register("callbacks", print)
    sections.register("callbacks", print)  # the same check again (a module imported twice) is no conflict
    with pytest.raises(ValueError, match="has an owner already"):
        sections.register("callbacks", repr)
    with pytest.raises(ValueError, match="not a top-level key"):
        sections.register("leaderbord", print)


def test_the_selection_default_is_written_once():
    assert Options().selection == LeaderboardSpec().selection_metric == DEFAULT_SELECTION


def test_training_settings_are_resolved_once_per_method(write_spec, tiny_spec, monkeypatch):
    """Once for the study and once per method, however many datasets, runs and paired claims use them."""
    tiny_spec["datasets"] = ["dsprites_procedural", "shapes3d_procedural"]
    tiny_spec["methods"].append({"label": "b2", "objective": "beta_vae", "train": {"lr": 0.001}})
    tiny_spec["leaderboard"]["claims"] = [{"claim": "x", "better": "bvae", "than": "b2"}]
    built = []
    real = spec_mod.TrainSettings.__post_init__
    monkeypatch.setattr(spec_mod.TrainSettings, "__post_init__", lambda self: built.append(self) or real(self))
    spec = load_spec(write_spec(tiny_spec))
    runs = spec.runs()
    assert len(runs) == 2 * 3 * 2 and len(built) == 1 + 2
    assert {r.train.lr for r in runs if r.method == "b2"} == {0.001}


def test_an_unknown_method_is_named_with_a_suggestion_in_its_place():
    from gmgbench.methods import registry

    msg = registry.unknown("gmg", "objective", " (did you mean 'x'?)")
    assert msg.startswith("unknown objective 'gmg' (did you mean 'x'?) ('gmg' is a regulariser, not an objective); "
                          "valid objectives: ")
    with pytest.raises(KeyError) as err:
        registry.get("gmg", "objective")
    assert err.value.args[0] == registry.unknown("gmg", "objective")


# -- the Config travels with the run -----------------------------------------------------------
_WORKER = """
import dataclasses, json, pickle, sys
from gmgbench.methods import registry
with open(sys.argv[1], "rb") as f:
    run = pickle.load(f)  # before any plugin is loaded, as in a worker's pipe or a Slurm job
for p in sys.argv[2:]:
    registry.load_plugin_file(p)  # what executors.execute does next
calls, real = [], registry.make_config
registry.make_config = lambda cls, params: calls.append(params) or real(cls, params)
obj, regs = run.method_configs()
print(json.dumps({"calls": len(calls), "objective": dataclasses.asdict(obj),
                  "regularisers": [dataclasses.asdict(c) for c in regs], "type": type(obj).__name__}))
"""


def _in_a_worker(tmp_path, run, plugins=()) -> dict:
    import json

    blob = tmp_path / "run.pkl"
    blob.write_bytes(pickle.dumps(run))
    out = subprocess.run([sys.executable, "-c", _WORKER, str(blob), *plugins], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
def test_a_run_unpickled_in_a_worker_uses_the_configs_built_at_load(write_spec, tiny_spec, tmp_path):
    tiny_spec["methods"][0]["regularisers"] = [{"name": "gmg", "params": {"weight": 10.0}}]
    run = load_spec(write_spec(tiny_spec)).runs()[0]
    clone = pickle.loads(pickle.dumps(run))
    assert clone == run and clone.run_id == run.run_id and clone.method_configs() == run.method_configs()
    got = _in_a_worker(tmp_path, run)
    assert got["calls"] == 0
    assert got["objective"] == dataclasses.asdict(run.method_configs()[0])
    assert got["regularisers"] == [dataclasses.asdict(c) for c in run.method_configs()[1]]


@pytest.mark.slow
def test_a_plugin_methods_config_travels_too(write_spec, tiny_spec, tmp_path):
    """A plugin file's Config class cannot be imported where the run is unpickled; it is found
    again by the method's name once the worker has loaded the study's plugins."""
    from gmgbench.methods import registry

    plugin = str(ROOT / "docs" / "examples" / "capacity_vae.py")
    tiny_spec["plugins"] = [plugin]
    tiny_spec["methods"] = [{"label": "cap", "objective": "capacity_vae", "params": {"capacity": 5.0}}]
    with registry.isolated():  # the plugin stays out of the other tests' registry
        run = load_spec(write_spec(tiny_spec)).runs()[0]
        run.method_configs()
    got = _in_a_worker(tmp_path, run, [plugin])
    assert got == {"calls": 0, "objective": {"gamma": 100.0, "capacity": 5.0}, "regularisers": [], "type": "Config"}


def test_a_run_made_without_configs_builds_them_once(write_spec, tiny_spec, monkeypatch):
    from gmgbench.harness.run_spec import RunSpec
    from gmgbench.methods import registry

    run = RunSpec.from_dict(load_spec(write_spec(tiny_spec)).runs()[0].to_dict())
    calls = []
    real = registry.make_config
    monkeypatch.setattr(registry, "make_config", lambda cls, p: calls.append(p) or real(cls, p))
    assert run.method_configs() is run.method_configs() and calls == [{"beta": 1.0}]


def test_a_config_with_slots_is_built_again_where_the_run_lands(write_spec, tiny_spec):
    """Carried Configs are their ``__dict__``; one without (``slots=True``) is rebuilt from the parameters."""
    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        beta: float = 1.0

    run = load_spec(write_spec(tiny_spec)).runs()[0]
    object.__setattr__(run, "_configs", (Slotted(), ()))
    clone = pickle.loads(pickle.dumps(run))
    assert "_carried_configs" not in clone.__dict__ and clone.method_configs()[0].beta == 1.0


def test_a_config_whose_fields_changed_since_is_built_anew(write_spec, tiny_spec, monkeypatch):
    """A plugin file edited between load and run: the carried values no longer fill its Config."""
    from gmgbench.methods import registry

    run = load_spec(write_spec(tiny_spec)).runs()[0]
    clone = pickle.loads(pickle.dumps(run))
    clone.__dict__["_carried_configs"][0].pop("beta")  # as if the Config had gained the field since
    calls, real = [], registry.make_config
    monkeypatch.setattr(registry, "make_config", lambda cls, p: calls.append(p) or real(cls, p))
    assert clone.method_configs() == run.method_configs() and calls == [{"beta": 1.0}]
