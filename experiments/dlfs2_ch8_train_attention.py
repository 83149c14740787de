"""Attention learns the date format: AttentionSeq2seq vs PeekySeq2seq vs Seq2seq (DLFS2 §8.3, ch08/train.py).

The book's setting: ``date.txt`` (45,000 training and 5,000 test dates written in many formats,
such as ``september 27, 1994`` -> ``1994-09-27``), every question reversed (``x[:, ::-1]``),
wordvec 16, hidden 256, batch 128, 10 epochs of Adam (lr 0.001) with gradient clipping at 5.0,
the book's hand-written backward (``--grad autodiff``: ``jax.grad``). After each epoch the test
accuracy by the book's ``eval_seq2seq`` (greedy decoding, right only when every character is),
and the train accuracy on as many training questions as the test set has.
The book's AttentionSeq2seq answers almost every test question after 2 epochs (§8.3.2); its
comparison draws PeekySeq2seq and Seq2seq on the same data. ``--runs attention`` trains only the
attention model.

Measured in fnn (``FNN_DATA_DIR=... fnn run dlfs2_ch8_train_attention --runs attention``, a
2-core CPU shared with other jobs, 5 to 9 minutes an epoch; stopped after epoch 4): test accuracy
0.0002, 0.0152, 0.9980, 0.9992 after epochs 1 to 4.

Quick mode (``--quick``): 8,000 generated dates (`date_problems`, the book's format), hidden 128,
batch 64, 3 epochs at lr 0.01 (ten times the book's, to learn in 336 steps), AttentionSeq2seq
against Seq2seq only (``--runs`` adds PeekySeq2seq). Measured with seed 0 (shared CPU): the
attention model answered 0.0, 0.73 and 1.0 of the 800 test dates after epochs 1, 2 and 3.

Writes ``train_attention.png`` (accuracy per epoch of each run; the first test questions with each
run's answers, green when right, red when wrong), ``answers.txt`` (the book's printout) and
``result.json``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnn import optim
from fnn.data.sequence import date_problems, load_sequence
from fnn.models import attention_seq2seq as AS
from fnn.models import seq2seq as S
from fnn.train import fit
from fnn_experiments import _common as ex

NAME = "dlfs2_ch8_train_attention"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--grad": {"choices": ["autodiff", "manual"], "default": "manual"},
    "--epochs": {"type": "count", "default": None},
    "--runs": {"nargs": "+", "choices": ["attention", "peeky", "baseline"], "default": None,  # RUNS
               "help": "which models to train (default: all three; --quick: attention and baseline)"},
}
SLOW = True  # quick mode: three seq2seq models compiled and trained on 29-character questions
BOOK = {"wordvec_size": 16, "hidden_size": 256, "batch_size": 128, "epochs": 10, "lr": 0.001, "max_grad": 5.0}
QUICK = {**BOOK, "hidden_size": 128, "batch_size": 64, "epochs": 3, "lr": 0.01, "problems": 8000}
RUNS = ("attention", "peeky", "baseline")
LABELS = {"attention": "AttentionSeq2seq", "peeky": "PeekySeq2seq", "baseline": "Seq2seq"}
SHOWN = 10  # the book prints its first 10 test questions


def _model(run: str, V: int, cfg: dict):
    D, H = cfg["wordvec_size"], cfg["hidden_size"]
    if run == "attention":
        return AS.model(V, D, H), AS.ATTENTION
    return S.model(V, D, H, peeky=run == "peeky"), S.PEEKY if run == "peeky" else S.SEQ2SEQ


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    cfg = dict(QUICK if args.quick else BOOK, grad=args.grad, reversed=True)
    if args.epochs:
        cfg["epochs"] = args.epochs
    runs = args.runs or (["attention", "baseline"] if args.quick else list(RUNS))
    histories, answers, seconds = {}, {}, {}
    with ex.Timer() as timer, tempfile.TemporaryDirectory() as tmp:
        source = date_problems(Path(tmp) / "date.txt", cfg["problems"], seed=args.seed) if args.quick else "date"
        (x, t), (x_test, t_test), char_to_id, id_to_char = load_sequence(source, reverse=True)
        opt = optax.chain(optim.clip_by_global_norm(cfg["max_grad"]), optim.adam(cfg["lr"]))
        for run in runs:
            model, nets = _model(run, len(char_to_id), cfg)
            with ex.Timer() as run_timer:
                ts, history = fit(model, opt, ((x, t), (x_test, t_test)), key=jax.random.key(args.seed),
                                  epochs=cfg["epochs"], batch_size=cfg["batch_size"], grad=args.grad,
                                  train_eval_size=len(x_test), progress=args.progress, desc=f"{NAME} {run}")
            histories[run], seconds[run] = history, run_timer.seconds
            ids, _ = S.generate(ts.params, jnp.asarray(x_test[:SHOWN]), t_test[:SHOWN, 0], t_test.shape[1] - 1, nets)
            answers[run] = ex.seq2seq_answers(x_test[:SHOWN], t_test[:SHOWN], np.asarray(ids), id_to_char, True)
    cfg.update(data="generated dates" if args.quick else "date.txt", train_size=int(x.shape[0]),
               test_size=int(x_test.shape[0]), vocab_size=len(char_to_id))
    metrics = {"test_acc": {r: h["test_acc"][-1] for r, h in histories.items()},
               "test_acc_per_epoch": {r: h["test_acc"] for r, h in histories.items()},
               "train_acc": {r: h["train_acc"][-1] for r, h in histories.items()}, "seconds": seconds}
    if "attention" in histories:
        metrics["attention_test_acc_epoch2"] = histories["attention"]["test_acc"][min(1, cfg["epochs"] - 1)]
    ex.save_figure(ex.seq2seq_figure(histories, answers, LABELS, "date format (reversed input): accuracy per epoch"),
                   out / "train_attention.png")
    (out / "answers.txt").write_text(ex.seq2seq_printout(answers, LABELS), encoding="utf-8")
    path = ex.save_result(
        out, NAME, args, config=cfg, metrics=metrics, seconds=timer.seconds, answers=answers,
        history={r: {k: h[k] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")}
                 for r, h in histories.items()},
        book={"attention_test_acc_epoch2": 1.0},
        book_ref={"section": "DLFS2 §8.3.2", "script": "ch08/train.py",
                  "approx": ["attention_test_acc_epoch2"], "quick_differs": True,
                  "note": "the book: AttentionSeq2seq answers almost every test question from epoch 2 on"})
    ex.report([*(f"{LABELS[r]}: test accuracy {h['test_acc'][-1]:.4f} after {len(h['epoch'])} epochs "
                 f"(per epoch {[round(a, 4) for a in h['test_acc']]}; {seconds[r]:.0f} s)"
                 for r, h in histories.items()),
               "book: AttentionSeq2seq ~1.0 from epoch 2", "", ex.seq2seq_table(answers, LABELS),
               f"wrote {out} ({path.name})"])
    return {"config": cfg, "metrics": metrics, "answers": answers}


if __name__ == "__main__":
    main()
