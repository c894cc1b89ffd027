"""The metric table: every registered metric is complete, and a bad declaration is named."""
from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from gmgbench import metrics
from gmgbench.metrics import table
from gmgbench.metrics.table import Metric, MetricError
from dist_helpers import install_distribution

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated_table():
    with table.isolated():
        yield


def test_every_registered_metric_is_complete():
    """Every field set: a resolvable compute whose signature has the declared sizes, at least
    one key, a direction for every key, a cost class, and dlib's name for every metric ported
    from dlib (only our own geometry metric has none)."""
    decls = table.declarations()
    assert [m.name for m in decls] == metrics.names()
    for m in decls:
        for f in dataclasses.fields(Metric):
            assert getattr(m, f.name) is not dataclasses.MISSING, (m.name, f.name)
        m.check("test")  # raises on an incomplete declaration
        assert m.keys and m.cost in table.COSTS
        params = inspect.signature(m.function()).parameters
        assert list(params)[:3] == ["ground_truth_data", "representation_function", "random_state"], m.name
        assert m.sizes and all(params[k].default == v for k, v in m.sizes.items()), m.name
        assert {m.direction(k) for k in m.keys} <= {-1, 0, 1}
        assert (m.dlib_name is None) == (m.name == "geometry"), m.name


def test_directions_are_those_the_boards_used():
    """The counts and dlib's lower-first unsupervised keys as the boards had them; geometry's
    distortion and gap lower-first, as every study that shows them lists them."""
    assert [c for m in table.declarations() for c in (f"{m.name}.{k}" for k in m.counts)
            if not c.startswith("geometry.")] == ["factor_vae.num_active_dims", "irs.num_active_dims"]
    assert table.declaration("unsupervised").lower == table.declaration("unsupervised").keys
    assert table.direction("geometry.dec_cos_gmg") == -1 and table.direction("geometry.dec_cos_gmg_rel_ci") == 0
    assert table.direction("dci.disentanglement") == 1 and table.direction("dci.nope") is None
    assert table.direction("nope.x") is None


def test_result_keys_and_functions_come_from_the_table():
    for m in table.declarations():
        assert metrics.result_keys(m.name) == m.keys
        assert metrics.get(m.name) is m.function()
    with pytest.raises(KeyError, match=r"unknown metric 'nope'; valid metrics: beta_vae, factor_vae"):
        metrics.get("nope")


def _compute(ground_truth_data, representation_function, random_state, artifact_dir=None, num_train=100):
    return {"score": 0.0}


def _metric(**kw) -> Metric:
    base = dict(name="mine", compute=_compute, keys=("score",), dlib_name=None, sizes={"num_train": 100},
                cost="cheap")
    return Metric(**{**base, **kw})


@pytest.mark.parametrize("kw, message", [
    ({"name": "my-metric"}, r"name must be a Python identifier"),
    ({"keys": ()}, r"keys must be distinct non-empty names"),
    ({"keys": ("a", "a")}, r"keys must be distinct"),
    ({"lower": ("other",)}, r"lower names 'other', not among its keys \(score\)"),
    ({"lower": ("score",), "counts": ("score",)}, r"'score' is listed both as lower-is-better and as a count"),
    ({"cost": "slow"}, r"cost must be one of cheap, costly, got 'slow'"),
    ({"dlib_name": ""}, r"dlib_name must be dlib's metric name or None"),
    ({"compute": "gmgbench.metrics.nope:f"}, r"compute 'gmgbench.metrics.nope:f' cannot be imported: ModuleNotFoundError"),
    ({"sizes": {"num_train": 10}}, r"sizes\['num_train'\] = 10 but _compute has 100"),
    ({"sizes": {"num_test": 10}}, r"sizes\['num_test'\] = 10 but _compute has no such parameter"),
])
def test_a_bad_declaration_is_named(kw, message):
    with table.loading("my_metric.py"), pytest.raises(MetricError, match=rf"^my_metric.py: .*{message}"):
        table.register(_metric(**kw))
    assert "mine" not in metrics.names()


def test_a_taken_name_is_refused_naming_who_has_it():
    with table.loading("my_metric.py"), pytest.raises(MetricError, match=r"'mig' is already registered by metrics/table.py"):
        table.register(_metric(name="mig"))


def test_a_failed_load_keeps_nothing_and_isolation_forgets():
    with pytest.raises(RuntimeError), table.loading("two.py"):
        table.register(_metric(name="first"))
        raise RuntimeError("the file fails after registering one")
    assert "first" not in metrics.names()
    with table.isolated():
        with table.loading("one.py") as added:
            table.register(_metric())
        assert added == ["mine"] and table.origin("mine") == "one.py"
    assert "mine" not in metrics.names()


@pytest.fixture
def site(site_packages):
    return site_packages


def test_entry_point_declaration_registers_once(site):
    install_distribution(site, "gmgbench_mep_good", """
        from gmgbench.metrics import Metric
        def spread(ground_truth_data, representation_function, random_state, artifact_dir=None, num_train=50):
            return {"spread": 1.0}
        SPREAD = Metric("spread", spread, ("spread",), dlib_name=None, sizes={"num_train": 50}, cost="cheap",
                        lower=("spread",))
        """, entry="spread", group=table.ENTRY_POINT_GROUP, attr="SPREAD")
    assert table.load_entry_points() == ["spread"]
    assert table.origin("spread") == "entry point spread = gmgbench_mep_good:SPREAD"
    assert table.direction("spread.spread") == -1
    assert table.load_entry_points() == []


def test_broken_entry_point_is_one_warning_and_named_on_lookup(site, caplog):
    install_distribution(site, "gmgbench_mep_bad", "raise ImportError('no such thing')\n", entry="bad",
                         group=table.ENTRY_POINT_GROUP)
    assert table.load_entry_points() == []
    assert [r.getMessage() for r in caplog.records] == [
        "installed package 'gmgbench_mep_bad' (entry point bad = gmgbench_mep_bad: ImportError: no such thing) "
        "is not loaded; studies that use none of its metrics are unaffected"]
    with pytest.raises(KeyError, match="gmgbench_mep_bad"):
        metrics.get("spread")


def test_docs_table_lists_every_builtin_with_its_cost_and_dlib_name():
    """docs/metrics.md's table of metrics says what the declarations say."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    for m in table.BUILTINS:
        row = re.search(rf"^\| `{m.name}` \|(.*)$", text, re.M)
        assert row, m.name
        assert m.cost in row.group(1) and (m.dlib_name or "none") in row.group(1), (m.name, row.group(1))
