"""The addition data set as seq2seq reads it: characters as ids (DLFS2 §7.2.4, ch07/show_addition_dataset.py).

Full mode: the book's ``addition.txt`` (found in ``$FNN_DATA_DIR/book`` or downloaded, sha256-verified)
loaded as the book's ``sequence.load_data('addition.txt', seed=1984)``: 50,000 lines shuffled with
the seed, split 45,000 / 5,000; each character an id in order of first appearance (``get_vocab``).
The book prints the shapes, ``(45000, 7) (45000, 5)`` and ``(5000, 7) (5000, 5)``, the first
training question ``[ 3  0  2  0  0 11  5]`` -> ``71+118`` and its answer ``[ 6  0 11  7  5]`` ->
``_189`` (``_`` is the decoder's start symbol; spaces pad both to a fixed width).

Quick mode (``--quick``): 5,000 problems in the same format written by `addition_problems`
(``--problems``), loaded the same way.

Writes ``addition_dataset.png`` (the vocabulary, and the first training problems as the id grids
the model reads, each cell its character and id) and ``result.json``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from fnn.data.sequence import addition_problems, load_sequence
from fnn_experiments import _common as ex

NAME = "dlfs2_ch7_show_addition_dataset"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--problems": {"type": "count", "default": 5000, "help": "generated problems (--quick)"},
}
BOOK = {"x_train_shape": [45000, 7], "t_train_shape": [45000, 5], "x_test_shape": [5000, 7],
        "t_test_shape": [5000, 5], "x_train[0]": [3, 0, 2, 0, 0, 11, 5], "t_train[0]": [6, 0, 11, 7, 5]}
SHOWN = 8  # training problems drawn as id grids


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer, tempfile.TemporaryDirectory() as tmp:
        source = (addition_problems(Path(tmp) / "addition.txt", args.problems, seed=args.seed)
                  if args.quick else "addition")
        (x, t), (x_test, t_test), char_to_id, id_to_char = load_sequence(source, seed=1984)

    def text(row):
        return "".join(id_to_char[int(i)] for i in row)

    metrics = {"x_train_shape": list(x.shape), "t_train_shape": list(t.shape), "x_test_shape": list(x_test.shape),
               "t_test_shape": list(t_test.shape), "x_train[0]": x[0].tolist(), "t_train[0]": t[0].tolist(),
               "question[0]": text(x[0]), "answer[0]": text(t[0]), "vocab_size": len(char_to_id),
               "vocabulary": {c: int(i) for c, i in char_to_id.items()}}
    ex.save_figure(_figure(x[:SHOWN], t[:SHOWN], id_to_char, "generated problems" if args.quick else "addition.txt"),
                   out / "addition_dataset.png")
    path = ex.save_result(
        out, NAME, args, config={"data": "generated addition problems" if args.quick else "addition.txt",
                                 "problems": args.problems if args.quick else 50000, "seed": 1984},
        metrics=metrics, seconds=timer.seconds, book=BOOK,
        book_ref={"section": "DLFS2 §7.2.4", "script": "ch07/show_addition_dataset.py", "quick_differs": True,
                  "note": "the shapes and the first training problem the book's script prints"})
    ex.report([f"{tuple(x.shape)} {tuple(t.shape)}", f"{tuple(x_test.shape)} {tuple(t_test.shape)}",
               str(x[0]), str(t[0]), text(x[0]), text(t[0]),
               "the book prints (45000, 7) (45000, 5), (5000, 7) (5000, 5), [ 3  0  2  0  0 11  5], "
               "[ 6  0 11  7  5], 71+118, _189",
               f"vocabulary ({len(char_to_id)} characters, in order of first appearance): "
               + " ".join(f"{c!r}:{i}" for c, i in char_to_id.items()),
               f"wrote {out} ({path.name})"])
    return {"metrics": metrics}


def _figure(x: np.ndarray, t: np.ndarray, id_to_char: dict, source: str):
    import matplotlib.pyplot as plt

    V = len(id_to_char)
    cmap = plt.get_cmap("tab20", V)
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.55 * len(x) + 1.8), layout="constrained",
                             gridspec_kw={"width_ratios": [x.shape[1], t.shape[1], 2.2]})
    for ax, ids, title in ((axes[0], x, "question x (encoder input)"), (axes[1], t, "answer t (decoder)")):
        ax.imshow(ids, cmap=cmap, vmin=-0.5, vmax=V - 0.5, aspect="auto", alpha=0.55)
        for (i, j), c in np.ndenumerate(ids):
            ch = id_to_char[int(c)]
            ax.text(j, i, f"{'␣' if ch == ' ' else ch}\n{c}", ha="center", va="center", fontsize=9,
                    family="monospace", linespacing=1.1)
        ax.set_xticks(range(ids.shape[1]))
        ax.set_yticks(range(len(ids)))
        ax.set(xlabel="position", title=title)
    axes[0].set_ylabel("training problem")
    vocab = axes[2]
    vocab.axis("off")
    vocab.set_title("vocabulary: character -> id")
    for i in range(V):
        ch = id_to_char[i]
        vocab.text(0.15, 1 - (i + 0.5) / V, f"{'␣' if ch == ' ' else ch!s:>2}  {i:2d}", family="monospace",
                   va="center", fontsize=10, bbox={"facecolor": cmap(i), "alpha": 0.55, "edgecolor": "none"})
    fig.suptitle(f"the addition data set as seq2seq reads it ({source}; DLFS2 §7.2.4)")
    return fig


if __name__ == "__main__":
    main()
