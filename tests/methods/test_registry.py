"""The registry's checks, ``call_checked``, pickling, and docs/methods.md staying true."""
from __future__ import annotations

import dataclasses
import pickle
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from gmgbench.methods import registry
from gmgbench.methods.base import ForwardPass, MethodOutputError, Objective, Regulariser, call_checked
from gmgbench.methods.registry import PluginError, register

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).name


@pytest.fixture(autouse=True)
def _isolated_registry():
    with registry.isolated():
        yield


def _objective(name="probe", call=None, config=None):
    attrs = {"name": name, "__call__": call or (lambda self, out: (out.mu.sum() * 0, {}))}
    if config is not None:
        attrs["Config"] = config
    return type("Probe", (Objective,), attrs)


# -- register: what a researcher gets wrong ----------------------------------------------
def test_register_rejects_a_class_that_is_not_a_method():
    with pytest.raises(PluginError, match=rf"{HERE}.*must subclass gmgbench.methods.base.Objective"):
        register(type("NotAMethod", (), {"name": "x"}))


@pytest.mark.parametrize("name", ["", "has space", "1abc", None])
def test_register_needs_an_identifier_name(name):
    with pytest.raises(PluginError, match=rf"{HERE}.*name must be a Python identifier"):
        register(_objective(name=name))


def test_register_needs_a_frozen_dataclass_config():
    class Plain:
        beta: float = 1.0

    with pytest.raises(PluginError, match=rf"{HERE}.*Config must be a @dataclass"):
        register(_objective(config=Plain))
    with pytest.raises(PluginError, match=rf"{HERE}.*Config must be frozen"):
        register(_objective(config=dataclass(type("Cfg", (), {"__annotations__": {"beta": float}, "beta": 1.0}))))


def test_register_checks_the_defaults_against_the_configs_own_checks():
    @dataclass(frozen=True)
    class Cfg:
        beta: float = -1.0

        def __post_init__(self):
            if self.beta < 0:
                raise ValueError("beta must be >= 0")

    with pytest.raises(PluginError, match=rf"{HERE}.*Config\(\) with its defaults fails: ValueError: beta must be >= 0"):
        register(_objective(config=Cfg))


def test_register_needs_weight_on_a_regulariser():
    @dataclass(frozen=True)
    class Cfg:
        strength: float = 1.0

    cls = type("Reg", (Regulariser,), {"name": "noweight", "Config": Cfg, "__call__": lambda self, out: (0, {})})
    with pytest.raises(PluginError, match=rf"{HERE}.*needs a 'weight' field"):
        register(cls)


def test_register_needs_call_with_one_argument():
    with pytest.raises(PluginError, match=rf"{HERE}.*must implement __call__"):
        register(type("NoCall", (Objective,), {"name": "nocall"}))
    with pytest.raises(PluginError, match=r"__call__ must take exactly one argument besides self"):
        register(_objective(call=lambda self: None))
    with pytest.raises(PluginError, match=r"__call__ must take exactly one argument besides self"):
        register(_objective(call=lambda self, out, step: None))


def test_register_refuses_a_name_clash_naming_both_files():
    with pytest.raises(PluginError, match=rf"{HERE}.*'beta_vae' is already registered as an objective by .*beta_vae.py"):
        register(_objective(name="beta_vae"))
    with pytest.raises(PluginError, match=r"'hfs' is already registered as a regulariser"):
        register(_objective(name="hfs"))  # across kinds too: spec names must be unambiguous


def test_registering_the_same_class_twice_is_harmless():
    cls = _objective(name="twice")
    assert register(register(cls)) is cls
    assert registry.get("twice", "objective") is cls


def test_isolated_forgets_what_the_block_registered():
    with registry.isolated():
        register(_objective(name="ephemeral"))
        assert "ephemeral" in registry.names("objective")
    assert "ephemeral" not in registry.names("objective")


# -- lookups and configs ------------------------------------------------------------------
def test_get_lists_valid_names_and_hints_at_the_other_kind():
    with pytest.raises(KeyError, match="unknown objective 'beta_vea'; valid objectives: annealed_vae, beta_tcvae, beta_vae, dip_vae_i, dip_vae_ii, factor_vae"):
        registry.get("beta_vea", "objective")
    with pytest.raises(KeyError, match="'hfs' is a regulariser, not an objective"):
        registry.get("hfs", "objective")
    with pytest.raises(KeyError, match="unknown method kind 'loss'"):
        registry.get("beta_vae", "loss")


def test_make_config_names_unknown_and_missing_parameters():
    with pytest.raises(KeyError, match=r"objective 'beta_vae' \(.*beta_vae.py\) has no parameter 'betta'; valid: beta"):
        registry.build("beta_vae", "objective", {"betta": 2.0})

    @dataclass(frozen=True)
    class Cfg:
        scale: float

    register(_objective(name="needs_scale", config=Cfg))
    with pytest.raises(ValueError, match=rf"objective 'needs_scale' \(.*{HERE}\) needs parameter 'scale'"):
        registry.build("needs_scale", "objective")
    assert registry.build("needs_scale", "objective", {"scale": 2.0}).cfg.scale == 2.0
    with pytest.raises(ValueError, match="objective 'beta_vae': beta must be >= 0"):
        registry.build("beta_vae", "objective", {"beta": -2.0})


def test_origin_and_source_hash_of_a_builtin():
    assert registry.origin("hfs", "regulariser").endswith("methods/regularisers/hfs.py")
    digest = registry.source_hash("hfs", "regulariser")
    assert re.fullmatch(r"[0-9a-f]{16}", digest)


# -- call_checked: the trainer's guard on what a method returns ----------------------------
def _out() -> ForwardPass:
    mu = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    x = torch.rand(4, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    return ForwardPass(x=x, mu=mu, logvar=torch.zeros_like(mu), z=mu, logits=torch.zeros_like(x),
                       model=torch.nn.Identity(), dataset_size=10)


BAD_RETURNS = {
    "a bare tensor": (lambda out: out.mu.sum(), r"Tensor; expected \(loss, logs\)"),
    "a triple": (lambda out: (out.mu.sum(), {}, 0), r"a tuple of length 3"),
    "a float loss": (lambda out: (1.0, {}), r"loss of type float; expected a scalar torch.Tensor"),
    "a vector loss": (lambda out: (out.mu.sum(1), {}), r"loss of shape \(4,\).*reduce over the batch"),
    "an integer loss": (lambda out: (torch.tensor(3), {}), r"dtype torch.int64; expected a floating-point scalar"),
    "logs as a list": (lambda out: (out.mu.sum(), [1.0]), r"logs of type list; expected a dict"),
    "a tensor log": (lambda out: (out.mu.sum(), {"kl": out.mu.sum()}), r"log 'kl' of type Tensor \(call .item\(\) on it\)"),
    "a string log": (lambda out: (out.mu.sum(), {"kl": "high"}), r"log 'kl' of type str"),
    "a non-str key": (lambda out: (out.mu.sum(), {1: 1.0}), r"log key 1; log keys must be str"),
}


@pytest.mark.parametrize("case", list(BAD_RETURNS))
def test_call_checked_names_the_method_and_its_file(case):
    fn, match = BAD_RETURNS[case]
    cls = register(_objective(name="wrong_returns", call=lambda self, out: fn(out)))
    with pytest.raises(MethodOutputError, match=rf"objective 'wrong_returns' \(.*{HERE}\) returned .*{match}"):
        call_checked(cls(), _out())


def test_call_checked_names_a_bare_callable_too():
    def per_sample(out):
        return out.mu.sum(1), {}

    with pytest.raises(MethodOutputError, match=rf"method '.*per_sample' \(.*{HERE}\) returned a loss of shape \(4,\)"):
        call_checked(per_sample, _out())


def test_call_checked_passes_good_output_through_as_floats():
    cls = register(_objective(name="good", call=lambda self, out: (out.mu.pow(2).sum().reshape(1), {"n": 3, "m": 0.5})))
    loss, logs = call_checked(cls(), _out())
    assert loss.shape == () and loss.requires_grad
    assert logs == {"n": 3.0, "m": 0.5} and all(type(v) is float for v in logs.values())
    nan = register(_objective(name="nan", call=lambda self, out: (out.mu.sum() * float("nan"), {})))
    assert torch.isnan(call_checked(nan(), _out())[0])  # divergence is the trainer's to report


# -- pickling (submitit ships methods to fresh processes) ----------------------------------
@pytest.mark.parametrize("name,kind,params", [
    ("beta_vae", "objective", {"beta": 2.0}),
    ("beta_tcvae", "objective", {"estimator": "mws"}),
    ("hfs", "regulariser", {"weight": 3.0}),
    ("jacobian", "regulariser", {"c": None, "side": "encoder"}),
])
def test_builtins_pickle_round_trip(name, kind, params):
    term = registry.build(name, kind, params)
    clone = pickle.loads(pickle.dumps(term))
    assert type(clone) is type(term) and clone.cfg == term.cfg and repr(clone) == repr(term)


def test_a_plugin_method_unpickles_in_a_fresh_process(tmp_path):
    plugin = tmp_path / "my_reg.py"
    plugin.write_text((ROOT / "docs" / "examples" / "latent_decorrelation.py").read_text())
    registry.load_plugin_file(plugin)
    blob = pickle.dumps(registry.build("latent_decorrelation", "regulariser", {"weight": 2.5}))
    code = ("import pickle, sys; t = pickle.loads(sys.stdin.buffer.read()); "
            "print(t.name, t.cfg.weight, type(t).__module__.startswith('gmgbench_plugin_'))")
    done = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["latent_decorrelation", "2.5", "True"]


# -- docs/methods.md lists every built-in, its parameters and defaults ----------------------
def test_methods_page_documents_every_builtin_parameter_and_default():
    assert not _undocumented_builtins(), "docs/methods.md is out of date with the registry: " + "; ".join(
        _undocumented_builtins())


def test_methods_page_check_ignores_installed_entry_point_methods(tmp_path, monkeypatch):
    """An installed ``gmgbench.methods`` package is no built-in: docs/methods.md need not list it."""
    import importlib.metadata

    (tmp_path / "toy_ep_pkg.py").write_text(
        "from dataclasses import dataclass\n"
        "from gmgbench.methods.base import Regulariser\n\n\n"
        "class ToyEp(Regulariser):\n"
        "    name = 'toy_ep'\n\n"
        "    @dataclass(frozen=True)\n"
        "    class Config(Regulariser.Config):\n"
        "        pass\n\n"
        "    def __call__(self, out):\n"
        "        return out.mu.sum() * 0, {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint(name="toy", value="toy_ep_pkg:ToyEp", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None, **kw: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    with registry.isolated():
        assert registry.load_entry_points() == ["toy_ep"]
        assert "toy_ep" in registry.names("regulariser")
        assert _undocumented_builtins() == []


def _undocumented_builtins() -> list[str]:
    from gmgbench.methods.builtins import BUILTINS

    page = (ROOT / "docs" / "methods.md").read_text()
    missing = []
    for kind in ("objective", "regulariser"):
        for name in sorted(BUILTINS[kind]):  # not registry.names(): installed plugins are not built-ins
            section = re.search(rf"^### `{name}`.*?(?=^### |\Z)", page, flags=re.M | re.S)
            if section is None:
                missing.append(f"section '### `{name}`'")
                continue
            for param, default in registry.get(name, kind).parameters().items():
                shown = "required" if default is dataclasses.MISSING else _yaml(default)
                if not re.search(rf"^\| `{param}` \| `{re.escape(shown)}` \|", section.group(0), flags=re.M):
                    missing.append(f"{name}: row '| `{param}` | `{shown}` |'")
    return missing


def _yaml(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- built-ins: declared by path, imported on first use ----------------------------------------
def test_importing_the_registry_imports_no_method_and_lists_every_builtin():
    code = ("import sys; from gmgbench.methods import registry; "
            "n = registry.names(); "
            "print(sorted(m for m in sys.modules if m.startswith('methods.') and m not in "
            "('gmgbench.methods.base', 'gmgbench.methods.registry', 'gmgbench.methods.builtins')), len(n))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    from gmgbench.methods.builtins import BUILTINS

    assert done.stdout.split() == ["[]", str(sum(len(t) for t in BUILTINS.values()))]


def test_every_declared_builtin_is_the_method_it_claims():
    from gmgbench.methods.builtins import BUILTINS

    for kind, table in BUILTINS.items():
        for name, path in table.items():
            cls = registry.get(name, kind)
            assert (cls.name, cls.kind, f"{cls.__module__}:{cls.__qualname__}") == (name, kind, path)
            assert registry.origin(name, kind).endswith(path.split(":")[0].removeprefix("gmgbench.").replace(".", "/") + ".py")


def _probe_module(tmp_path, monkeypatch, name="probe_builtin"):
    (tmp_path / "probe_mod.py").write_text(
        "from dataclasses import dataclass\nfrom gmgbench.methods.base import Objective\n\n"
        f"class Probe(Objective):\n    name = {name!r}\n\n"
        "    @dataclass(frozen=True)\n    class Config:\n        beta: float = 1.0\n\n"
        "    def __call__(self, out):\n        return out.mu.sum() * 0, {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "probe_mod", raising=False)


def test_a_builtin_is_one_declaration_loaded_lazily(tmp_path, monkeypatch):
    _probe_module(tmp_path, monkeypatch)
    reg = registry.Registry({"objective": {"probe_builtin": "probe_mod:Probe"}})
    assert reg.names("objective") == ["probe_builtin"] and "probe_mod" not in sys.modules
    assert reg.build("probe_builtin", "objective", {"beta": 2.0}).cfg.beta == 2.0
    assert reg.origin("probe_builtin", "objective") == str(tmp_path / "probe_mod.py")
    with pytest.raises(PluginError, match="is already registered as an objective"):
        reg.register(_objective(name="probe_builtin"))  # built-in names stay taken


def test_a_builtin_declared_under_another_name_is_refused(tmp_path, monkeypatch):
    _probe_module(tmp_path, monkeypatch, name="other")
    reg = registry.Registry({"objective": {"probe_builtin": "probe_mod:Probe"}})
    with pytest.raises(PluginError, match=r"declared as objective 'probe_builtin' in methods/builtins.py but is a "
                                          r"objective named 'other'"):
        reg.get("probe_builtin", "objective")
    reg = registry.Registry({"objective": {"gone": "probe_mod:Nope"}})
    with pytest.raises(PluginError, match=r"methods/builtins.py: objective 'gone' = 'probe_mod:Nope': AttributeError"):
        reg.get("gone", "objective")


def test_an_entry_point_may_name_one_class(tmp_path, monkeypatch):
    import importlib.metadata

    _probe_module(tmp_path, monkeypatch)
    ep = importlib.metadata.EntryPoint(name="probe", value="probe_mod:Probe", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [ep] if group == ep.group else [])
    assert registry.load_entry_points() == ["probe_builtin"]
    assert registry.origin("probe_builtin", "objective") == "entry point probe = probe_mod:Probe"
    assert registry.load_entry_points() == []  # once
