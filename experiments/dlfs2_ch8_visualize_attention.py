"""Attention maps: which question characters each answer character reads (DLFS2 §8.3.3, Fig. 8-26).

The book's script: ``ch08/visualize_attention.py``.

Full mode: the book's trained ``ch08/AttentionSeq2seq.pkl`` (found in ``$FNN_DATA_DIR/book`` or
downloaded, sha256-verified) in fnn's AttentionSeq2seq, on five test questions of ``date.txt``
drawn as the book draws them (``np.random.seed(1984)``, then ``np.random.randint`` five times).
Each map has one row per answer character and one column per question character (read forwards,
as the book turns the reversed input back); black is 0, white is 1, as the book's ``Greys_r``.
fnn draws the weights of its greedy decoding (`fnn.models.attention_seq2seq.generate`); the book's
script draws those of teacher forcing with the right answer, the same numbers whenever the answer
is right (the book's weights answer every test question right).

Quick mode (``--quick``): an AttentionSeq2seq trained for 3 epochs on 8,000 generated dates (as
``dlfs2_ch8_train_attention --quick``), then the same five draws from its test split.

Writes ``attention_map.png`` (five maps, tick labels the characters, a colour bar) and
``result.json`` (the five questions, answers and maps).
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

NAME = "dlfs2_ch8_visualize_attention"
OPTIONS: dict = {}  # only the options every experiment has (fnn.cli.parser)
SLOW = True  # quick mode trains an AttentionSeq2seq first (about 40 s of CPU)
BOOK = {"wordvec_size": 16, "hidden_size": 256, "examples": 5, "seed": 1984}
QUICK = {**BOOK, "hidden_size": 128, "batch_size": 64, "epochs": 3, "lr": 0.01, "max_grad": 5.0, "problems": 8000}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    cfg = dict(QUICK if args.quick else BOOK)
    with ex.Timer() as timer, tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            path = date_problems(Path(tmp) / "date.txt", cfg["problems"], seed=args.seed)
            (x, t), (x_test, t_test), char_to_id, id_to_char = load_sequence(path, reverse=True)
            model = AS.model(len(char_to_id), cfg["wordvec_size"], cfg["hidden_size"])
            opt = optax.chain(optim.clip_by_global_norm(cfg["max_grad"]), optim.adam(cfg["lr"]))
            ts, history = fit(model, opt, ((x, t), (x_test, t_test)), key=jax.random.key(args.seed),
                              epochs=cfg["epochs"], batch_size=cfg["batch_size"], progress=args.progress, desc=NAME)
            params = ts.params
            source = f"fnn, trained {cfg['epochs']} epochs (test accuracy {history['test_acc'][-1]:.3f})"
        else:
            from fnn.data.weights import load_book_weights

            _, (x_test, t_test), char_to_id, id_to_char = load_sequence("date", reverse=True)
            params = S.from_book_params(load_book_weights("AttentionSeq2seq.pkl"))
            source = "the book's AttentionSeq2seq.pkl"
        rng = np.random.RandomState(cfg["seed"])  # the book's np.random.seed(1984); np.random.randint(...)
        idx = np.array([rng.randint(0, len(x_test)) for _ in range(cfg["examples"])])
        ids, weights = AS.generate(params, jnp.asarray(x_test[idx]), t_test[idx, 0], t_test.shape[1] - 1)
    examples = []
    for i, row, ans, guess, a in zip(idx, x_test[idx], t_test[idx], np.asarray(ids), np.asarray(weights), strict=True):
        examples.append({"index": int(i), "question": [id_to_char[int(c)] for c in row[::-1]],
                         "correct": "".join(id_to_char[int(c)] for c in ans[1:]),
                         "guess": [id_to_char[int(c)] for c in guess], "ok": bool(np.array_equal(ans[1:], guess)),
                         "map": a[:, ::-1]})  # columns in reading order, as the book's attention_map[:, ::-1]
    metrics = {"right": sum(e["ok"] for e in examples), "shown": len(examples),
               "mean_max_weight": float(np.mean([e["map"].max(axis=1).mean() for e in examples]))}
    ex.save_figure(_figure(examples, source), out / "attention_map.png")
    path = ex.save_result(out, NAME, args, config={**cfg, "weights": source}, metrics=metrics, seconds=timer.seconds,
                          examples=[{**e, "question": "".join(e["question"]), "guess": "".join(e["guess"])}
                                    for e in examples],
                          book={}, book_ref={"section": "DLFS2 §8.3.3", "figures": ["Fig. 8-26"],
                                             "script": "ch08/visualize_attention.py", "quick_differs": True,
                                             "note": "the book shows the maps, no numbers"})
    ex.report([*(f"{e['index']:4d}  {''.join(e['question']).rstrip():30s} -> {''.join(e['guess'])} "
                 f"({'right' if e['ok'] else 'wrong, ' + e['correct']})" for e in examples),
               f"weights: {source}; mean of each row's largest weight {metrics['mean_max_weight']:.3f}",
               f"wrote {out} ({path.name})"])
    return {"config": cfg, "metrics": metrics, "examples": examples}


def _figure(examples: list[dict], source: str):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 1, figsize=(9, 2.9 * len(examples)), layout="constrained")
    for ax, e in zip(np.atleast_1d(axes), examples, strict=True):
        image = ax.pcolormesh(e["map"], cmap="Greys_r", vmin=0.0, vmax=1.0)
        ax.set_xticks(np.arange(e["map"].shape[1]) + 0.5, [c if c != " " else "␣" for c in e["question"]])
        ax.set_yticks(np.arange(e["map"].shape[0]) + 0.5, e["guess"])
        ax.invert_yaxis()
        ax.tick_params(length=0, labelsize=9)
        ax.set_title(f"test question {e['index']}: answer {''.join(e['guess'])} "
                     f"({'right' if e['ok'] else 'wrong; right: ' + e['correct']})", fontsize=10)
        ax.set_ylabel("output")
    np.atleast_1d(axes)[-1].set_xlabel("input (the question, read forwards)")
    fig.colorbar(image, ax=axes, shrink=0.5, label="attention weight")
    fig.suptitle(f"attention maps (DLFS2 Fig. 8-26): {source}")
    return fig


if __name__ == "__main__":
    main()
