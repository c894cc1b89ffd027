"""The errors a user meets first: one clear line naming what is wrong, exit 1."""
from __future__ import annotations

import pytest

from harness.cli import main


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
