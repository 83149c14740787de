"""The DLFS2 ch7-ch8 experiments (seq2seq on addition, attention on dates, the attention map):
their quick modes teach the chapter's lesson and write strictly valid result.json files.

The quick modes train models for half a minute or more each, so their tests are ``slow``; the
helpers and the map drawn from the book's trained weights (with ``$FNN_DATA_DIR``) run by default.
"""

import json

import numpy as np
import pytest

from fnn_experiments import _common as ex
from fnn_experiments import dlfs2_ch7_show_addition_dataset as show
from fnn_experiments import dlfs2_ch7_train_seq2seq as ch7
from fnn_experiments import dlfs2_ch8_train_attention as ch8
from fnn_experiments import dlfs2_ch8_visualize_attention as vis


def _strict(path) -> dict:
    """result.json read strictly: a bare NaN or Infinity is refused, as by browsers' JSON.parse."""
    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_answers_read_a_reversed_question_forwards_and_need_every_character():
    id_to_char = dict(enumerate("0123456789+ _"))
    x = np.array([[11, 2, 1, 10, 1], [11, 11, 2, 10, 3]])  # "1+12 " and "3+2  " reversed
    t = np.array([[12, 1, 3], [12, 5, 11]])                  # "_13", "_5 "
    guess = np.array([[1, 3], [5, 1]])                       # "13" right; "51" wrong in its last character
    answers = ex.seq2seq_answers(x, t, guess, id_to_char, reverse=True)
    assert [a["question"] for a in answers] == ["1+12 ", "3+2  "]
    assert [(a["correct"], a["guess"], a["ok"]) for a in answers] == [("13", "13", True), ("5 ", "51", False)]
    printout = ex.seq2seq_printout({"run": answers}, {"run": "peeky"})
    assert printout == "== peeky\nQ 1+12 \nT 13\n☑ 13\n---\nQ 3+2  \nT 5 \n☒ 51\n---\n"
    table = ex.seq2seq_table({"run": answers, "other": answers}, {"run": "peeky", "other": "base"}).splitlines()
    assert table[0].split() == ["question", "answer", "peeky", "base"]
    assert table[2].split() == ["3+2", "5", "☒", "51", "☒", "51"]


def test_show_addition_dataset_quick(tmp_path):
    show.main(["--quick", "--problems", "600", "--out", str(tmp_path), "--no-progress"])
    result = _strict(tmp_path / "result.json")
    m = result["metrics"]
    assert (m["x_train_shape"], m["t_train_shape"], m["x_test_shape"], m["t_test_shape"]) == (
        [540, 7], [540, 5], [60, 7], [60, 5])  # the book's 90 % / 10 % split
    id_to_char = {i: c for c, i in m["vocabulary"].items()}
    assert "".join(id_to_char[i] for i in m["x_train[0]"]) == m["question[0]"]
    assert m["answer[0]"][0] == "_" and eval(m["question[0]"]) == int(m["answer[0]"][1:])  # noqa: S307 digits and +
    assert result["book"] == show.BOOK and result["book_ref"]["quick_differs"] is True
    assert (tmp_path / "addition_dataset.png").stat().st_size > 20000


def test_show_addition_dataset_prints_the_books_numbers(data_dir, tmp_path):
    show.main(["--out", str(tmp_path), "--no-progress"])
    result = _strict(tmp_path / "result.json")
    assert {k: result["metrics"][k] for k in show.BOOK} == show.BOOK
    assert (result["metrics"]["question[0]"], result["metrics"]["answer[0]"]) == ("71+118 ", "_189 ")


def test_book_attention_map(data_dir, tmp_path):
    """The book's weights answer the five questions the book draws (np.random.seed(1984)) right; each
    row of a map is a softmax over the question's characters."""
    out = vis.main(["--out", str(tmp_path), "--no-progress"])
    result = _strict(tmp_path / "result.json")
    assert result["metrics"]["right"] == result["metrics"]["shown"] == 5
    assert [e["index"] for e in result["examples"]] == [e["index"] for e in out["examples"]]
    for e in out["examples"]:
        assert e["map"].shape == (10, 29)  # "yyyy-mm-dd" by the question's 29 characters
        np.testing.assert_allclose(e["map"].sum(axis=1), 1.0, rtol=1e-5)
    assert result["book_ref"]["section"] == "DLFS2 §8.3.3"
    assert (tmp_path / "attention_map.png").stat().st_size > 20000


@pytest.mark.slow
def test_train_seq2seq_quick(tmp_path):
    """Reversing the question, then peeking, each learns addition faster (DLFS2 Fig. 7-26, 7-27)."""
    ch7.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    result = _strict(tmp_path / "result.json")
    acc = result["metrics"]["test_acc"]
    assert acc["peeky_reversed"] > acc["reversed"] > acc["baseline"] + 0.2, acc
    assert acc["peeky_reversed"] >= 0.5, acc
    assert result["book"] == {"test_acc": {"reversed": 0.5, "peeky_reversed": 1.0}}
    assert result["book_ref"]["quick_differs"] is True
    assert [len(result["history"][r]["test_acc"]) for r in ch7.RUNS] == [ch7.QUICK["epochs"]] * 3
    assert len(result["answers"]["baseline"]) == ch7.SHOWN
    assert "== peeky + reversed\nQ " in (tmp_path / "answers.txt").read_text(encoding="utf-8")
    assert (tmp_path / "train_seq2seq.png").stat().st_size > 20000


@pytest.mark.slow
def test_train_attention_quick(tmp_path):
    """Attention learns the date format where the plain Seq2seq answers nothing right (DLFS2 §8.3.2)."""
    ch8.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    result = _strict(tmp_path / "result.json")
    acc = result["metrics"]["test_acc"]
    assert set(acc) == {"attention", "baseline"}
    assert acc["attention"] >= 0.9 and acc["baseline"] < 0.1, acc  # seed 0: 1.0 and 0.0
    assert result["metrics"]["attention_test_acc_epoch2"] == result["history"]["attention"]["test_acc"][1]
    assert result["book"] == {"attention_test_acc_epoch2": 1.0}
    assert (tmp_path / "train_attention.png").stat().st_size > 20000


@pytest.mark.slow
def test_visualize_attention_quick(tmp_path):
    vis.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    result = _strict(tmp_path / "result.json")
    assert result["metrics"]["shown"] == 5 and 0 <= result["metrics"]["right"] <= 5
    for e in result["examples"]:
        rows = np.asarray(e["map"])
        assert rows.shape == (len(e["guess"]), len(e["question"]))
        np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-5)
    assert result["config"]["weights"].startswith("fnn, trained 3 epochs")


def test_the_reversed_runs_of_the_books_code_quoted_are_the_recorded_ones():
    """train_seq2seq's docstring quotes the book's own code's reversed-input accuracies over seeds
    (scripts/book_seq2seq_seeds.py, recorded in tests/reference/): the quote is the record."""
    from pathlib import Path

    record = json.loads((Path(__file__).parent / "reference" / "book_seq2seq_reversed.json").read_text())
    final = {seed: acc[-1] for seed, acc in record["accuracy"].items()}
    assert all(len(acc) == record["epochs"] == 25 for acc in record["accuracy"].values())
    doc = " ".join(ch7.__doc__.split())
    assert f"{final.pop('book'):.3f} as it stands" in doc
    assert ", ".join(f"{final[s]:.3f}" for s in sorted(final)) in doc
    mean = np.mean([acc[-1] for acc in record["accuracy"].values()])
    assert f"mean of the five {mean:.3f}" in doc


def test_the_books_peeky_run_quoted_is_the_recorded_one():
    from pathlib import Path

    record = json.loads((Path(__file__).parent / "reference" / "book_seq2seq_reversed.json").read_text())
    acc = record["peeky_accuracy"]["book"]
    doc = " ".join(ch7.__doc__.split())
    assert len(acc) == 25
    assert (f"gave {acc[17]:.4f} after epoch 18, {acc[21]:.4f} after epoch 22 and {acc[24]:.4f} after epoch 25"
            in doc)
