"""The errors a user meets first: one clear line naming what is wrong, exit 1."""
from __future__ import annotations

import pytest

from gmgbench.harness.cli import main


def test_unknown_objective_in_spec(write_spec, tiny_spec, capsys):
    tiny_spec["methods"][0]["objective"] = "betavae"
    path = write_spec(tiny_spec)
    assert main(["run", str(path), "--no-leaderboard"]) == 1
    err = capsys.readouterr().err
    assert f"{path}: methods[0].objective: unknown objective 'betavae'" in err
    assert "beta_vae" in err and "Traceback" not in err


def test_typo_in_study_key(write_spec, tiny_spec, capsys):
    tiny_spec["trian"] = tiny_spec.pop("train")
    assert main(["run", str(write_spec(tiny_spec)), "--no-leaderboard"]) == 1
    assert "trian: unknown key (did you mean 'train'?)" in capsys.readouterr().err


def test_missing_spec_file(tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: study spec not found" in capsys.readouterr().err


def test_bad_plugin_names_the_file(write_spec, tiny_spec, tmp_path, capsys):
    plugin = tmp_path / "my_method.py"
    plugin.write_text("raise ImportError('cannot import torchh')\n")
    tiny_spec["plugins"] = ["my_method.py"]
    assert main(["run", str(write_spec(tiny_spec)), "--no-leaderboard"]) == 1
    err = capsys.readouterr().err
    assert str(plugin) in err and "cannot import torchh" in err


def test_methods_lists_builtins_with_parameters(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "beta_vae" in out and "beta=1.0" in out


def test_debug_shows_the_traceback(write_spec, tiny_spec):
    tiny_spec["seedz"] = 1
    with pytest.raises(Exception, match="seedz"):
        main(["--debug", "run", str(write_spec(tiny_spec))])


def test_debug_is_accepted_after_the_subcommand(write_spec, tiny_spec):
    tiny_spec["seedz"] = 1
    with pytest.raises(Exception, match="seedz"):
        main(["run", str(write_spec(tiny_spec)), "--debug"])


def test_debug_is_accepted_after_a_nested_subcommand(capsys):
    # `data check` with no dataset on disk is still a clean exit; --debug just has to parse
    assert main(["data", "check", "dsprites_procedural", "--debug"]) in (0, 1)


def test_an_internal_key_error_keeps_its_traceback(monkeypatch, write_spec, tiny_spec):
    """Only UserError is a user's mistake; a KeyError is a bug and must not become one line."""
    import gmgbench.harness.spec

    def broken(*a, **kw):
        raise KeyError("internal")

    monkeypatch.setattr(gmgbench.harness.spec, "load_spec", broken)
    with pytest.raises(KeyError, match="internal"):
        main(["run", str(write_spec(tiny_spec)), "--no-leaderboard"])


def test_every_user_error_class_is_a_user_error():
    from gmgbench.harness.data import DatasetError
    from gmgbench.harness.errors import UserError
    from gmgbench.harness.leaderboard.options import LeaderboardError
    from gmgbench.harness.leaderboard.release import ReleaseExists
    from gmgbench.harness.results import ResultExists
    from gmgbench.harness.slurm.cluster import SlurmError
    from gmgbench.harness.slurm.profile import ProfileError
    from gmgbench.harness.spec import SpecError

    for cls in (DatasetError, LeaderboardError, ReleaseExists, ResultExists, SlurmError, ProfileError, SpecError):
        assert issubclass(cls, UserError), cls


def test_leaderboard_without_a_study_is_a_usage_error(capsys):
    assert main(["leaderboard"]) == 2
    assert "give a study spec, or --rebuild" in capsys.readouterr().err


def test_methods_with_a_bad_plugin_is_one_line(tmp_path, capsys):
    plugin = tmp_path / "nope.py"
    plugin.write_text("x = 1\n")
    assert main(["methods", "--plugin", str(plugin)]) == 1
    err = capsys.readouterr().err
    assert str(plugin) in err and "registers no method" in err and "Traceback" not in err


def test_evaluate_names_an_unknown_metric_or_run(tmp_path, capsys):
    assert main(["evaluate", "0000000000000000", "--results", str(tmp_path)]) == 1
    assert "no result of run 0000000000000000" in capsys.readouterr().err
    from gmgbench.harness.results import ResultsStore

    store = ResultsStore(tmp_path)
    store.write_result("abc", {"run_id": "abc"})
    (store.workdir("abc")).mkdir(parents=True)
    (store.workdir("abc") / "model.pt").write_bytes(b"")
    assert main(["evaluate", "abc", "--results", str(tmp_path), "--metrics", "mgi"]) == 1
    assert "--metrics: mgi: unknown metric" in capsys.readouterr().err
    assert main(["evaluate", "abc", "--results", str(tmp_path), "--metrics", "{bad json"]) == 1
    assert "--metrics: not valid JSON" in capsys.readouterr().err


# -- issue 27: confusing messages -------------------------------------------------------------
def test_help_describes_gmgbench_and_every_run_option(capsys):
    from gmgbench.harness.cli import build_parser

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "Train, evaluate and rank disentangled representation learning methods" in out
    assert "``" not in out and "parse arguments" not in out  # not the module's docstring
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in ("run", "demo"):
        assert sub.choices[name]._option_string_actions["--workers"].help


def test_verbose_is_accepted_after_the_subcommand(write_spec, tiny_spec, capsys):
    path = write_spec(tiny_spec)
    assert main(["status", str(path), "-v"]) == 0
    assert main(["status", str(path), "--verbose"]) == 0
    assert "error" not in capsys.readouterr().err


def test_a_spec_without_evaluation_says_its_runs_are_not_scored(write_spec, tiny_spec, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    tiny_spec.pop("evaluation")
    tiny_spec.pop("leaderboard")
    tiny_spec.update(seeds=1)
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    path = write_spec(tiny_spec)
    assert main(["run", str(path), "--results", str(tmp_path / "store")]) == 0
    out = capsys.readouterr()
    assert f"note: {path}: evaluation: no such block, so the runs are trained but not scored" in out.err
    assert "| " not in out.out and not (tmp_path / "boards").exists()  # no empty board
