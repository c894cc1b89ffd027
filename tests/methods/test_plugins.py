"""Plugins: the documented examples run end to end; every broken plugin gets an error naming it."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from gmgbench.methods import registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.base import MethodOutputError, call_checked
from gmgbench.methods.registry import PluginError
from dist_helpers import install_distribution

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"


@pytest.fixture(autouse=True)
def _isolated_registry():
    with registry.isolated():
        yield


def _write(tmp_path: Path, body: str, name: str = "my_method.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _train_step(objective, regularisers=()) -> dict[str, float]:
    """One step of the training loop's shape: forward, checked terms, backward, update."""
    torch.manual_seed(0)
    model = VAE(num_channels=1, latent_dim=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.rand(8, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    out = model(x, generator=torch.Generator().manual_seed(0), dataset_size=1000)
    loss, logs = call_checked(objective, out)
    for reg in regularisers:
        term, rlogs = call_checked(reg, out)
        loss = loss + reg.cfg.weight * term
        logs.update({f"{reg.name}.{k}": v for k, v in rlogs.items()})
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    return logs


# -- the documented examples ------------------------------------------------------------
def test_objective_example_loads_and_trains():
    assert registry.load_plugin_file(EXAMPLES / "capacity_vae.py") == ["capacity_vae"]
    assert registry.origin("capacity_vae", "objective") == str(EXAMPLES / "capacity_vae.py")
    obj = registry.build("capacity_vae", "objective", {"capacity": 5.0})
    logs = _train_step(obj)
    assert set(logs) == {"recon", "kl"}
    assert registry.load_plugin_file(EXAMPLES / "capacity_vae.py") == ["capacity_vae"]  # idempotent


def test_regulariser_example_loads_and_trains_with_a_builtin_objective():
    assert registry.load_plugin_file(EXAMPLES / "latent_decorrelation.py") == ["latent_decorrelation"]
    reg = registry.build("latent_decorrelation", "regulariser")
    assert reg.cfg.weight == 10.0
    logs = _train_step(registry.build("beta_tcvae", "objective"), [reg])
    assert logs["latent_decorrelation.max_abs_cov"] >= 0


def test_objective_example_runs_through_a_tiny_study(tmp_path):
    spec_mod = pytest.importorskip("gmgbench.harness.spec")
    train = pytest.importorskip("gmgbench.harness.train")
    plugin = tmp_path / "capacity_vae.py"
    plugin.write_text((EXAMPLES / "capacity_vae.py").read_text())
    spec = {
        "name": "plugin-demo",
        "datasets": ["dsprites_procedural"],
        "plugins": ["capacity_vae.py"],  # relative to the spec file, as the docs say
        "methods": [{"objective": "capacity_vae", "params": {"capacity": [5.0]},
                     "regularisers": [{"name": "hfs", "params": {"weight": 1.0}}]}],
        "seeds": 1,
        "train": {"steps": 2, "batch_size": 8, "checkpoint_every": 2, "log_every": 1, "num_threads": 1},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    (run,) = spec_mod.load_spec(path).runs()
    summary = train.train_run(run, tmp_path / "work", progress=False)
    assert summary["steps"] == 2
    assert {"recon", "kl", "hfs", "loss"} <= set(summary["final"])


# -- broken plugins: a clear error naming the file ----------------------------------------
BROKEN = {
    "syntax error": ("def oops(:\n", r"importing the plugin failed: SyntaxError"),
    "import error": ("import no_such_module_for_gmgbench\n", r"ModuleNotFoundError: No module named 'no_such_module_for_gmgbench'"),
    "registers nothing": ("""
        from gmgbench.methods.base import Objective
        class Forgotten(Objective):
            name = "forgotten"
            def __call__(self, out):
                return out.mu.sum(), {}
        """, r"registers no method; decorate an Objective or Regulariser subclass with @gmgbench.methods.registry.register"),
    "missing name": ("""
        from gmgbench.methods.base import Objective
        from gmgbench.methods.registry import register
        @register
        class NoName(Objective):
            def __call__(self, out):
                return out.mu.sum(), {}
        """, r"NoName.name must be a Python identifier, got ''"),
    "missing weight field": ("""
        from dataclasses import dataclass
        from gmgbench.methods.base import Regulariser
        from gmgbench.methods.registry import register
        @register
        class Reg(Regulariser):
            name = "reg_without_weight"
            @dataclass(frozen=True)
            class Config:
                strength: float = 1.0
            def __call__(self, out):
                return out.mu.sum(), {}
        """, r"regulariser 'reg_without_weight' needs a 'weight' field in its Config"),
    "config not a dataclass": ("""
        from gmgbench.methods.base import Objective
        from gmgbench.methods.registry import register
        @register
        class Obj(Objective):
            name = "obj_plain_config"
            class Config:
                beta: float = 1.0
            def __call__(self, out):
                return out.mu.sum(), {}
        """, r"Obj.Config must be a @dataclass\(frozen=True\)"),
    "no __call__": ("""
        from gmgbench.methods.base import Objective
        from gmgbench.methods.registry import register
        @register
        class Obj(Objective):
            name = "obj_without_call"
        """, r"Obj must implement __call__\(self, out\) -> \(loss, logs\)"),
    "name clash with a built-in": ("""
        from gmgbench.methods.base import Objective
        from gmgbench.methods.registry import register
        @register
        class MyBetaVAE(Objective):
            name = "beta_vae"
            def __call__(self, out):
                return out.mu.sum(), {}
        """, r"method name 'beta_vae' is already registered as an objective by .*methods/beta_vae.py; choose another name"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_plugin_error_names_the_file(tmp_path, case):
    body, match = BROKEN[case]
    path = _write(tmp_path, body)
    before = registry.names()
    modules = {m for m in sys.modules if m.startswith("gmgbench_plugin_")}  # earlier tests' plugins stay loaded
    with pytest.raises(PluginError, match=rf"^{path}: .*{match}"):
        registry.load_plugin_file(path)
    assert registry.names() == before
    assert {m for m in sys.modules if m.startswith("gmgbench_plugin_")} == modules  # the failed file left none


def test_a_failed_file_leaves_nothing_registered_and_can_be_fixed(tmp_path):
    good = """
        from gmgbench.methods.base import Objective
        from gmgbench.methods.registry import register
        @register
        class First(Objective):
            name = "first_of_two"
            def __call__(self, out):
                return out.mu.sum(), {}
        """
    path = _write(tmp_path, good + "\n" + BROKEN["name clash with a built-in"][0])
    with pytest.raises(PluginError, match="beta_vae"):
        registry.load_plugin_file(path)
    assert "first_of_two" not in registry.names()
    path.write_text(textwrap.dedent(good))
    assert registry.load_plugin_file(path) == ["first_of_two"]


def test_wrong_return_type_is_caught_at_the_training_step_naming_the_file(tmp_path):
    path = _write(tmp_path, """
        from gmgbench.methods.base import Objective
        from gmgbench.methods.registry import register
        @register
        class PerSample(Objective):
            name = "per_sample_loss"
            def __call__(self, out):
                return out.mu.pow(2).sum(1), {"n": out.batch_size}   # forgot to reduce over the batch
        """)
    registry.load_plugin_file(path)
    with pytest.raises(MethodOutputError, match=rf"objective 'per_sample_loss' \({path}\) returned a loss of shape \(8,\)"):
        _train_step(registry.build("per_sample_loss", "objective"))


def test_required_parameter_without_default_is_named(tmp_path):
    path = _write(tmp_path, """
        from dataclasses import dataclass
        from gmgbench.methods.base import Objective
        from gmgbench.methods.registry import register
        @register
        class Obj(Objective):
            name = "needs_target"
            @dataclass(frozen=True)
            class Config:
                target: float
            def __call__(self, out):
                return (out.mu - self.cfg.target).pow(2).mean(), {}
        """)
    registry.load_plugin_file(path)
    with pytest.raises(ValueError, match=rf"objective 'needs_target' \({path}\) needs parameter 'target'"):
        registry.build("needs_target", "objective")


def test_missing_or_non_python_plugin_file(tmp_path):
    with pytest.raises(PluginError, match=rf"plugin file {tmp_path}/nope.py does not exist"):
        registry.load_plugin_file(tmp_path / "nope.py")
    (tmp_path / "method.yaml").write_text("name: x\n")
    with pytest.raises(PluginError, match=r"must be a Python file ending in .py"):
        registry.load_plugin_file(tmp_path / "method.yaml")


# -- installed packages: the gmgbench.methods entry-point group ---------------------------
@pytest.fixture
def site(site_packages):
    return site_packages


def test_entry_point_plugin_registers_once(site):
    install_distribution(site, "gmgbench_ep_good", """
        from gmgbench.methods.base import Regulariser
        from gmgbench.methods.registry import register
        @register
        class L1(Regulariser):
            name = "latent_l1"
            def __call__(self, out):
                return out.mu.abs().mean(), {}
        """, entry="demo")
    assert registry.load_entry_points() == ["latent_l1"]
    assert registry.origin("latent_l1", "regulariser") == "entry point demo = gmgbench_ep_good"
    assert registry.load_entry_points() == []  # already loaded
    _train_step(registry.build("beta_vae", "objective"), [registry.build("latent_l1", "regulariser", {"weight": 0.1})])


def test_broken_entry_point_is_one_warning_naming_the_package(site, caplog):
    """A package that fails to import is not loaded and not fatal: one warning line names it,
    and a lookup of a method nobody registered says which package failed."""
    install_distribution(site, "gmgbench_ep_broken", "raise RuntimeError('plugin exploded')\n", entry="broken")
    with caplog.at_level("WARNING"):
        assert registry.load_entry_points() == []
    assert [r.getMessage() for r in caplog.records] == [
        "installed package 'gmgbench_ep_broken' (entry point broken = gmgbench_ep_broken: RuntimeError: plugin "
        "exploded) is not loaded; studies that use none of its methods are unaffected"]
    assert registry.load_entry_points() == []  # tried once per process
    assert len(caplog.records) == 1
    with pytest.raises(KeyError, match=r"unknown regulariser 'mine'.*installed package 'gmgbench_ep_broken'"):
        registry.get("mine", "regulariser")
    registry.get("hfs", "regulariser")  # the others are unaffected


def test_entry_point_name_clash_names_it_and_keeps_the_builtin(site):
    install_distribution(site, "gmgbench_ep_clash", """
        from gmgbench.methods.base import Regulariser
        from gmgbench.methods.registry import register
        @register
        class Mine(Regulariser):
            name = "hfs"
            def __call__(self, out):
                return out.mu.sum(), {}
        """, entry="clash")
    assert registry.load_entry_points() == []
    [line] = registry.broken_packages()
    assert line.startswith("installed package 'gmgbench_ep_clash' (entry point clash = gmgbench_ep_clash: "
                           "method name 'hfs' is already registered")
    assert registry.origin("hfs", "regulariser").endswith("methods/regularisers/hfs.py")


def test_docs_forward_pass_table_lists_every_field_and_property():
    """docs/new-method.md §2 documents every attribute a method's __call__ can read."""
    import dataclasses
    import re

    from gmgbench.methods.base import ForwardPass

    text = (ROOT / "docs" / "new-method.md").read_text()
    section = text[text.index("## 2. What `__call__` gets"):text.index("## 2b.")]
    documented = {name for row in re.findall(r"^\| ([^|]+) \|", section, re.M) for name in re.findall(r"`(\w+)`", row)}
    public = {f.name for f in dataclasses.fields(ForwardPass)}
    public |= {n for n, v in vars(ForwardPass).items() if isinstance(v, property) and not n.startswith("_")}
    assert public - documented == set()
