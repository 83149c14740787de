"""Every experiment's quick mode runs and writes a figure and a complete result.json.

An experiment whose quick mode takes more than ~15 s sets ``SLOW = True`` at module level; its test
then carries the ``slow`` marker and runs with ``pytest -m slow``.

An experiment that teaches a lesson (the book's figure shows that dropout narrows the train/test
gap, that the CNN beats the MLP, ...) states it as ``LESSON(result) -> None``, assertions on its
result.json; the same quick run that checks the files checks the lesson, so quick mode must teach
what the book's figure shows. Every DLFS1 ch6-ch8 experiment has one.
"""

import ast
import importlib
import json
from pathlib import Path

import pytest

import fnn_experiments
from fnn import cli

EXPERIMENTS = cli.experiments()


def _is_slow(name: str) -> bool:
    source = (Path(fnn_experiments.__path__[0]) / f"{name}.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SLOW" for t in node.targets):
            return bool(ast.literal_eval(node.value))
    return False


PARAMS = [pytest.param(name, marks=[pytest.mark.slow] if _is_slow(name) else []) for name in EXPERIMENTS]


def test_the_quick_start_experiment_is_listed():
    assert "ch5_train_neuralnet" in EXPERIMENTS
    assert all(line for line in EXPERIMENTS.values()), "every experiment needs a docstring"


@pytest.mark.parametrize("name", PARAMS)
def test_quick_mode_writes_figure_and_result(name, tmp_path):
    code = cli.main(["run", name, "--quick", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    result = json.loads((tmp_path / "result.json").read_text())
    for field in ("experiment", "quick", "seed", "config", "metrics", "seconds", "versions"):
        assert field in result, f"{name}: result.json lacks {field}"
    assert result["experiment"] == name and result["quick"] is True
    assert result["metrics"], f"{name}: no metrics"
    pngs = list(tmp_path.glob("*.png"))
    assert pngs, f"{name}: no figure written"
    assert all(p.stat().st_size > 5000 for p in pngs), "a figure is suspiciously small"
    if name == "ch5_train_neuralnet":  # the README's quick start promises >= 0.95 on the embedded digits
        assert result["metrics"]["test_acc"] >= 0.95
    lesson = getattr(importlib.import_module(f"fnn_experiments.{name}"), "LESSON", None)
    if lesson is not None:
        lesson(result)


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n.startswith(("ch6_", "ch7_", "ch8_"))])
def test_dlfs1_ch6_to_ch8_experiments_state_their_lesson(name):
    assert callable(getattr(importlib.import_module(f"fnn_experiments.{name}"), "LESSON", None)), \
        f"{name}: no LESSON(result) saying what its quick mode must show"


def test_cli_list_and_errors(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == next(iter(EXPERIMENTS))
    assert cli.main(["run", "ch5_train_neuralnett"]) == 2
    err = capsys.readouterr().err
    assert "no experiment named 'ch5_train_neuralnett'" in err and "did you mean ch5_train_neuralnet" in err
    with pytest.raises(SystemExit):
        cli.main(["run", "ch5_train_neuralnet", "--seed", "not-a-number"])
