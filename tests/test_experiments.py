"""Every experiment's quick mode runs and writes a figure and a complete result.json.

An experiment whose quick mode takes more than ~15 s sets ``SLOW = True`` at module level; its test
then carries the ``slow`` marker and runs with ``pytest -m slow``.

An experiment that teaches a lesson (the book's figure shows that dropout narrows the train/test
gap, that the CNN beats the MLP, ...) states it as ``LESSON(result) -> None``, assertions on its
result.json; the same quick run that checks the files checks the lesson, so quick mode must teach
what the book's figure shows. Every DLFS1 ch6-ch8 experiment has one.
"""

import argparse
import ast
import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

import fnn_experiments
from fnn import cli
from fnn.report import leaves
from fnn_experiments import _common as ex

EXPERIMENTS = cli.experiments()
timing = importlib.import_module("scripts.time_experiments")
TIMED = {name: paths + others for name, _, paths, others, _, _ in timing.PAIRS}


def _is_slow(name: str) -> bool:
    source = (Path(fnn_experiments.__path__[0]) / f"{name}.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SLOW" for t in node.targets):
            return bool(ast.literal_eval(node.value))
    return False


PARAMS = [pytest.param(name, marks=[pytest.mark.slow] if _is_slow(name) else []) for name in EXPERIMENTS]

# Where the book states a number, result.json carries it under "book" (a few keys each, as dotted paths).
BOOK_NUMBERS = {
    "ch1_matplotlib": ["x + y", "A * [10, 20]", "X[X > 15]"],
    "ch2_perceptron_gates": ["truth_tables.AND", "truth_tables.NAND", "truth_tables.OR"],
    "ch2_perceptron_learning": ["AND.truth_table", "NAND.truth_table", "OR.truth_table"],
    "ch2_xor": ["xor", "table.rows"],
    "ch3_activations": ["sigmoid", "forward", "softmax", "softmax_large"],
    "ch3_mnist_show": ["first_label", "image_shape"],
    "ch3_neuralnet_mnist": ["mnist_test_acc"],
    "ch4_numerical_diff": ["diff_at_5", "diff_at_10", "partial_x0", "partial_x1"],
    "ch4_gradient_2d": ["gradients.(3, 4)", "gradients.(0, 2)", "gradients.(3, 0)"],
    "ch4_gradient_method": ["final_x.0.1", "final_x.10.0", "final_x.1e-10"],
    "ch4_simple_net": ["predict", "loss", "dW"],
    "ch4_train_neuralnet": ["test_acc"],
    "ch5_buy_apple": ["as_the_book_prints.apple.price", "as_the_book_prints.apple_orange.dtax"],
    "ch5_gradient_check": ["mean_abs_diff.backprop vs numerical.W1", "mean_abs_diff.backprop vs numerical.b2"],
    "ch5_train_neuralnet": ["test_acc"],
    "dlfs2_ch5_simple_rnnlm": ["first_epoch_perplexity"],
    "dlfs2_ch6_rnnlm": ["test_perplexity"],
    "dlfs2_ch6_better_rnnlm": ["test_perplexity"],
    "dlfs2_ch7_generate_text": ["book Rnnlm.pkl test_perplexity"],
}


def check_book(name: str, result: dict) -> None:
    """The book's numbers are there, with their section; where quick mode runs the book's own inputs
    and the book's number is exact, fnn's equals it to the digits the book prints."""
    book, ref = leaves(result["book"]), result["book_ref"]
    if name in BOOK_NUMBERS:
        assert ref and ref["section"].startswith(("DLFS1 §", "DLFS2 §")), f"{name}: book_ref {ref}"
        missing = [k for k in BOOK_NUMBERS[name] if k not in book]
        assert not missing, f"{name}: result.json's book lacks {missing}"
    if not book or ref.get("quick_differs"):
        return
    metrics = leaves(result["metrics"])
    compared = [k for k in book if k in metrics and k not in ref.get("approx", [])]
    for key in compared:
        np.testing.assert_allclose(np.asarray(metrics[key], float), np.asarray(book[key], float),
                                   rtol=2e-4, atol=1e-8, err_msg=f"{name}: {key} differs from the book")


def test_the_quick_start_experiment_is_listed():
    assert "ch5_train_neuralnet" in EXPERIMENTS
    assert all(line for line in EXPERIMENTS.values()), "every experiment needs a docstring"


@pytest.mark.parametrize("name", PARAMS)
def test_quick_mode_writes_figure_and_result(name, tmp_path):
    code = cli.main(["run", name, "--quick", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    result = strict_json((tmp_path / "result.json").read_text())
    for field in ("experiment", "quick", "seed", "config", "metrics", "seconds", "versions", "book", "book_ref"):
        assert field in result, f"{name}: result.json lacks {field}"
    check_book(name, result)
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
    for pair in TIMED.get(name, ()):  # what scripts/time_experiments.py reads as training and other timed work
        assert isinstance(timing._get(result, pair), float) and timing._get(result, pair) > 0, f"{name}: {pair}"


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n.startswith(("ch6_", "ch7_", "ch8_"))])
def test_dlfs1_ch6_to_ch8_experiments_state_their_lesson(name):
    assert callable(getattr(importlib.import_module(f"fnn_experiments.{name}"), "LESSON", None)), \
        f"{name}: no LESSON(result) saying what its quick mode must show"


def strict_json(text: str):
    """The parsed JSON; fails on NaN / Infinity, which Python's json reads but JSON does not allow."""
    def refuse(constant):
        raise ValueError(f"result.json holds {constant}, which is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_check_book_catches_a_missing_or_wrong_number():
    result = {"book": {"sigmoid": [0.5]}, "book_ref": {"section": "DLFS1 §3.2"}, "metrics": {"sigmoid": [0.6]}}
    with pytest.raises(AssertionError, match="sigmoid differs from the book"):
        check_book("ch3_activations", {**result, "book": {**result["book"], "forward": [0], "softmax": [0],
                                                         "softmax_large": [0]}})
    with pytest.raises(AssertionError, match="lacks"):
        check_book("ch3_activations", result)
    check_book("ch3_activations", {**result, "book_ref": {"section": "DLFS1 §3.2", "approx": ["sigmoid"]},
                                   "book": {"sigmoid": 0.5, "forward": 0, "softmax": 0, "softmax_large": 0}})


def test_save_result_writes_strict_json_with_the_books_numbers(tmp_path):
    args = argparse.Namespace(quick=True, seed=3)
    metrics = {"acc": np.float32(0.5), "nan": math.nan, "inf": np.array([1.0, np.inf, -np.inf]),
               "nested": {"x": [np.nan, 2]}}
    path = ex.save_result(tmp_path, "demo", args, config={"p": Path("a/b")}, metrics=metrics, seconds=1.23456,
                          book={"acc": 0.5, "curve": [1, 2.5], "dW": {"W1": [[0.1, -0.2]]}},
                          book_ref={"section": "DLFS1 §5.7.4", "figures": ["Fig. 5-30"],
                                    "approx": ["acc", "dW.W1"]})
    result = strict_json(path.read_text())
    assert result["metrics"] == {"acc": 0.5, "nan": None, "inf": [1.0, None, None], "nested": {"x": [None, 2]}}
    assert result["config"] == {"p": "a/b"} and result["seconds"] == 1.235
    assert result["book"] == {"acc": 0.5, "curve": [1, 2.5], "dW": {"W1": [[0.1, -0.2]]}}
    assert result["book_ref"]["section"] == "DLFS1 §5.7.4" and result["book_ref"]["figures"] == ["Fig. 5-30"]
    path = ex.save_result(tmp_path, "demo", args, config={}, metrics={"a": 1}, seconds=0)
    assert strict_json(path.read_text())["book"] == {} and strict_json(path.read_text())["book_ref"] is None


@pytest.mark.parametrize("book, book_ref, message", [
    ({"acc": math.nan}, {"section": "DLFS1 §3"}, "book['acc'] must be a finite number"),
    ({"acc": "0.97"}, {"section": "DLFS1 §3"}, "book['acc'] must be a finite number"),
    ({"acc": True}, {"section": "DLFS1 §3"}, "book['acc'] must be a finite number"),
    ({"acc": []}, {"section": "DLFS1 §3"}, "book['acc'] must be a finite number"),
    ({"dW": {"W1": [1.0, math.inf]}}, {"section": "DLFS1 §3"}, "book['dW.W1'] must be a finite number"),
    ({"acc": 0.97}, None, "book numbers need book_ref"),
    ({}, {"figures": ["Fig. 3-1"]}, "book_ref['section'] must be a non-empty string"),
    ({}, {"section": "DLFS1 §3", "page": 3}, "unknown keys ['page']"),
    ({}, {"section": "DLFS1 §3", "quick_differs": "yes"}, "book_ref['quick_differs'] must be True or False"),
    ({}, {"section": "DLFS1 §3", "figures": "Fig. 3-1"}, "book_ref['figures'] must be a list of strings"),
    ({"acc": 0.97}, {"section": "DLFS1 §3", "approx": ["loss"]}, "book_ref['approx'] names ['loss']"),
])
def test_save_result_refuses_malformed_book_numbers(tmp_path, book, book_ref, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ex.save_result(tmp_path, "demo", argparse.Namespace(quick=True, seed=0), config={}, metrics={"acc": 1},
                       seconds=0, book=book, book_ref=book_ref)
    assert not (tmp_path / "result.json").exists()


def test_cli_list_and_errors(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == next(iter(EXPERIMENTS))
    assert cli.main(["run", "ch5_train_neuralnett"]) == 2
    err = capsys.readouterr().err
    assert "no experiment named 'ch5_train_neuralnett'" in err and "did you mean ch5_train_neuralnet" in err
    with pytest.raises(SystemExit):
        cli.main(["run", "ch5_train_neuralnet", "--seed", "not-a-number"])
