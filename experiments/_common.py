"""What the experiments share: arguments, output folder, result.json, figures, and the helpers that
several experiments of one chapter use (the experiments never import each other; they import this).

An experiment is ``experiments/<chapter>_<what>.py`` (installed as the package ``fnn_experiments``)
with ``main(argv=None) -> dict``. It parses ``--quick``, ``--seed`` and ``--out`` with `parser`,
runs, and writes its PNG figure(s) and a ``result.json`` (`save_result`: config, metrics, seconds,
versions) into the output folder (default ``results/<name>/``). ``--quick`` runs on the embedded
digits or a generated corpus in seconds; the full mode uses full MNIST or PTB
(``$FNN_DATA_DIR``; see `fnn.data`). Figures are drawn with matplotlib's Agg backend, which
`parser` selects: experiments write files, they never open windows.

* every experiment: `parser`, `output_dir`, `load_data`, `Timer`, `save_result`, `save_figure`,
  `report`, `versions`, `plot_history`;
* DLFS1 ch2 (perceptrons): `plot_points`, `plot_gate`;
* DLFS1 ch6 (loss curves on MNIST): `setup`, `train_curves`, `smooth`, `loss_figure`, `MARKERS`;
* DLFS2 ch5-7 (language models): `load_corpora`, `plot_ppl`, `load_params`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from fnn import perceptron as P
from fnn.files import write_atomic
from fnn.multi import fit_many

# ---------------------------------------------------------------------------------------------
# Every experiment
# ---------------------------------------------------------------------------------------------


def parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every experiment has; selects matplotlib's Agg backend."""
    matplotlib.use("Agg")  # experiments write files; they never open windows
    p = argparse.ArgumentParser(prog=f"fnn run {name}", description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="seconds on the embedded digits instead of the full data set")
    p.add_argument("--seed", type=int, default=0, help="the random seed (default 0)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder (default results/{name})")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars")
    return p


def output_dir(args: argparse.Namespace, name: str) -> Path:
    """The output folder of this run, created if missing."""
    out = args.out if args.out is not None else Path("results") / name
    out.mkdir(parents=True, exist_ok=True)
    return out


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on, and the device it ran on."""
    import optax

    import fnn

    return {"fnn": fnn.__version__, "python": platform.python_version(), "jax": jax.__version__,
            "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else "",
            "optax": optax.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "device": str(jax.devices()[0].device_kind),
            "cpu_count": str(os.cpu_count())}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):  # numpy / jax arrays and scalars
        return x.tolist()
    return x


def save_result(out: Path, name: str, args: argparse.Namespace, *, config: dict, metrics: dict,
                seconds: float, **extra) -> Path:
    """Write ``out/result.json`` atomically and return its path.

    Fields: experiment, quick, seed, config, metrics, seconds, created, versions, and `extra`
    (e.g. per-epoch history).
    """
    result = {"experiment": name, "quick": bool(args.quick), "seed": args.seed,
              "config": config, "metrics": metrics, "seconds": round(float(seconds), 3),
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "versions": versions(), **extra}
    path = out / "result.json"
    write_atomic(path, (json.dumps(_jsonable(result), indent=2) + "\n").encode())
    return path


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Save a figure as PNG and close it."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_history(history: dict, title: str) -> plt.Figure:
    """Loss per iteration and train/test accuracy per epoch, side by side (DLFS1 Fig. 4-11, 4-12)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss = np.asarray(history["step_loss"])
    ax_loss.plot(np.arange(1, loss.size + 1), loss, lw=0.6, alpha=0.5, label="mini-batch")
    if loss.size >= 20:
        w = max(loss.size // 50, 5)
        smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
        ax_loss.plot(np.arange(w, loss.size + 1), smooth, lw=1.5, label=f"mean of {w}")
    ax_loss.set(xlabel="iteration", ylabel="loss", title="training loss")
    ax_loss.legend()
    epochs = history["epoch"]
    ax_acc.plot(epochs, history["train_acc"], "o-", ms=3, label="train acc")
    ax_acc.plot(epochs, history["test_acc"], "s--", ms=3, label="test acc")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.0), title="accuracy")
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    return fig


def load_data(args: argparse.Namespace, *, quick: str = "digits28", full: str = "mnist", **kwargs):
    """``((x_train, t_train), (x_test, t_test))``: the embedded `quick` set with ``--quick``,
    otherwise the `full` data set (see `fnn.data.load`)."""
    from fnn import data

    return data.load(quick if args.quick else full, **kwargs)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def report(lines: Sequence[str]) -> None:
    """Print an experiment's summary lines to stdout."""
    for line in lines:
        print(line)
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# DLFS1 ch2: perceptron gates on the unit square (ch2_perceptron_gates, _learning, ch2_xor)
# ---------------------------------------------------------------------------------------------


def plot_points(ax, targets, title: str) -> None:
    """The four inputs, 0 as circles and 1 as triangles (the book's markers), on the unit square."""
    x = np.asarray(P.INPUTS)
    targets = np.asarray(targets)
    for value, marker, label in ((0, "o", "y = 0"), (1, "^", "y = 1")):
        sel = targets == value
        ax.scatter(x[sel, 0], x[sel, 1], marker=marker, s=110, facecolors="white" if value == 0
                   else "tab:gray", edgecolors="k", zorder=3, label=label)
    ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), xlabel="$x_1$", ylabel="$x_2$", title=title,
           aspect="equal")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)


def plot_gate(ax, params: P.Perceptron, targets, title: str, color: str = "tab:blue") -> None:
    """A perceptron's line w · x + b = 0 and the half-plane where it outputs 1, with the four inputs."""
    g = np.linspace(-0.5, 1.5, 201)
    X1, X2 = np.meshgrid(g, g)
    grid = jnp.asarray(np.stack([X1.ravel(), X2.ravel()], axis=1), jnp.float32)  # (G, 2)
    Y = np.asarray(P.perceptron(params, grid)).reshape(X1.shape)
    ax.contourf(X1, X2, Y, levels=[0.5, 1.5], colors=[color], alpha=0.18)
    w1, w2 = (float(v) for v in params.w)
    b = float(params.b)
    if abs(w2) > 1e-12:
        ax.plot(g, -(w1 * g + b) / w2, color=color, lw=1.8,
                label=f"{w1:+.2g} x1 {w2:+.2g} x2 {b:+.2g} = 0")
    plot_points(ax, targets, title)



# ---------------------------------------------------------------------------------------------
# DLFS1 ch6: training-loss curves of 784-100x4-10 networks (ch6_optimizer_compare_mnist,
# ch6_weight_init_compare)
# ---------------------------------------------------------------------------------------------

MARKERS = {"SGD": "o", "Momentum": "x", "AdaGrad": "s", "Adam": "D", "std=0.01": "o", "Xavier": "s",
           "He": "D"}


def smooth(losses: np.ndarray, window: int = 21) -> np.ndarray:
    """Centred moving average of a loss curve, edges padded by reflection (the book's
    ``common/util.smooth_curve`` uses an 11-point Kaiser window; the idea is the same)."""
    half = window // 2
    padded = np.pad(losses, half, mode="reflect")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def loss_figure(curves: dict[str, np.ndarray], title: str, ylim: float) -> plt.Figure:
    """Smoothed mean training loss per iteration, one line per entry (DLFS1 Figures 6-9, 6-15)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, loss in curves.items():
        ax.plot(np.arange(1, loss.size + 1), smooth(loss), marker=MARKERS.get(name),
                markevery=max(loss.size // 20, 1), ms=4, label=name)
    ax.set(xlabel="iterations", ylabel="loss", ylim=(0, ylim), title=title)
    ax.legend()
    return fig


def setup(args):
    """Data and batch/epoch settings of the ch6 loss-curve experiments: ``(data, config)``."""
    data = load_data(args)
    (x_train, _), _ = data
    if args.quick:  # 1,437 digits: 11 batches of 128 an epoch
        epochs, num_batches = 30, 10
    else:           # 2,000 iterations as the book: 5 epochs of 400 batches (51,200 of 60,000 samples)
        epochs, num_batches = 5, 400
    config = {"data": "digits28" if args.quick else "mnist", "hidden_sizes": [100] * 4,
              "activation": "relu", "batch_size": 128, "epochs": epochs, "num_batches": num_batches,
              "iterations": epochs * num_batches, "seeds": args.seeds,
              "train_size": int(x_train.shape[0])}
    return data, config


def train_curves(model, optimizer, data, config, key, *, hparams=None):
    """(M, iterations) step losses and (M,) final test accuracies of M = len(keys) networks."""
    (x_train, t_train), (x_test, t_test) = data
    M = config["seeds"] if hparams is None else len(jax.tree_util.tree_leaves(hparams)[0])
    _, h = fit_many(model, optimizer, (x_train, t_train), jax.random.split(key, M), hparams=hparams,
                    epochs=config["epochs"], batch_size=config["batch_size"],
                    num_batches=config["num_batches"], eval_data={"test": (x_test, t_test)})
    return np.asarray(h["step_loss"]), np.asarray(h["test_acc"][:, -1])


# ---------------------------------------------------------------------------------------------
# DLFS2 ch5-7: language models (dlfs2_ch5_simple_rnnlm, dlfs2_ch6_rnnlm, dlfs2_ch6_better_rnnlm,
# dlfs2_ch7_generate_text)
# ---------------------------------------------------------------------------------------------


def load_corpora(args, quick: dict):
    """(train, valid, test corpora, id_to_word, description, true perplexity or None)."""
    if args.quick:
        from fnn.data.corpus import generated_corpus, sample, true_perplexity

        train, _, id_to_word, lang = generated_corpus(
            quick["corpus_words"], vocab_size=quick["vocab_size"], order=quick["order"],
            concentration=quick["concentration"], seed=args.seed)
        valid, test = sample(lang, 5001, seed=args.seed + 100), sample(lang, 5001, seed=args.seed + 200)
        return train, valid, test, id_to_word, (
            f"generated order-{quick['order']} Markov language, V={quick['vocab_size']}"), {
            "entropy_rate_nats": lang.entropy, "true_perplexity": lang.perplexity,
            "true_model_test_perplexity": true_perplexity(lang, test)}
    from fnn.data.ptb import load_ptb

    train, _, id_to_word = load_ptb("train")
    return train, load_ptb("valid")[0], load_ptb("test")[0], id_to_word, "PTB", None


def plot_ppl(history: dict, title: str, ylim=None, true_ppl=None) -> plt.Figure:
    """Train perplexity against the iteration, with the language's true perplexity when known."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["ppl_step"], history["ppl"], lw=1, label="train")
    if true_ppl is not None:
        ax.axhline(true_ppl, ls="--", c="k", lw=1, label=f"true perplexity {true_ppl:.2f}")
    ax.set(xlabel="iteration", ylabel="perplexity", title=title)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend()
    return fig


def load_params(path) -> dict:
    """Parameters saved by dlfs2_ch6_rnnlm (``params_<family>.npz``) as the nested dict."""
    params: dict = {}
    with np.load(path) as f:
        for key in f.files:
            layer, name = key.split("/")
            params.setdefault(layer, {})[name] = f[key]
    return params


# ---------------------------------------------------------------------------------------------
# DLFS2 ch7-8: seq2seq (dlfs2_ch7_train_seq2seq, dlfs2_ch8_train_attention)
# ---------------------------------------------------------------------------------------------


def seq2seq_answers(x, t, ids, id_to_char: dict, reverse: bool) -> list[dict]:
    """What the book's ``eval_seq2seq`` prints for each question: the question (read forwards when
    the input was reversed), the right answer, the greedy guess (ids (N, S)), and whether it is right."""
    def text(row):
        return "".join(id_to_char[int(i)] for i in row)
    return [{"question": text(q[::-1] if reverse else q), "correct": text(c[1:]), "guess": text(g),
             "ok": bool(np.array_equal(c[1:], g))} for q, c, g in zip(x, t, ids, strict=True)]


def seq2seq_printout(answers: dict[str, list[dict]], labels: dict[str, str]) -> str:
    """The book's printout of each run (``Q``, ``T``, ☑/☒ and the guess, ``---``)."""
    return "".join(f"== {labels[run]}\n" + "".join(
        f"Q {a['question']}\nT {a['correct']}\n{'☑' if a['ok'] else '☒'} {a['guess']}\n---\n" for a in answered)
        for run, answered in answers.items())


def seq2seq_table(answers: dict[str, list[dict]], labels: dict[str, str]) -> str:
    """The runs' answers side by side, one question a line, ☑/☒ before each guess."""
    first = next(iter(answers.values()))
    wq = max(len("question"), *(len(a["question"].rstrip()) for a in first)) + 2
    wa = max(len("answer"), *(len(a["correct"]) for a in first)) + 2
    wg = max(len(labels[r]) for r in answers) + 2
    rows = ["question".ljust(wq) + "answer".ljust(wa) + "".join(labels[r].ljust(wg) for r in answers)]
    for i, a in enumerate(first):
        rows.append(a["question"].rstrip().ljust(wq) + a["correct"].ljust(wa) + "".join(
            (("☑ " if ans[i]["ok"] else "☒ ") + ans[i]["guess"]).ljust(wg) for ans in answers.values()))
    return "\n".join(rows)


def seq2seq_figure(histories: dict, answers: dict[str, list[dict]], labels: dict[str, str], title: str):
    """Test accuracy per epoch of each run (the book's Fig. 7-26/7-27, 8-25), and the first test
    questions with each run's greedy answer, green when right and red when wrong."""
    fig, (ax, tab) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 1.3]})
    for (run, h), marker in zip(histories.items(), "osD^v", strict=False):
        ax.plot(h["epoch"], h["test_acc"], marker=marker, ms=4, label=labels[run])
    ax.set(xlabel="epochs", ylabel="test accuracy (exact match)", ylim=(-0.02, 1.02), title=title)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    tab.axis("off")
    first = next(iter(answers.values()))
    headers = ["question", "answer", *(labels[r].replace(" + ", " +\n").replace(" input", "\ninput") for r in answers)]
    cells = [[a["question"].rstrip() for a in first], [a["correct"] for a in first],
             *([("✓ " if a["ok"] else "✗ ") + a["guess"] for a in ans] for ans in answers.values())]
    widths = [max(len(c) for c in [*col, *h.split("\n")]) + 2 for col, h in zip(cells, headers, strict=True)]
    size = min(9.5, 6.8 * 72 / (0.62 * sum(widths)))
    x = 0.0
    for col, (header, column, width) in enumerate(zip(headers, cells, widths, strict=True)):
        tab.text(x, 1.0, header, fontsize=size, fontweight="bold", va="top", family="monospace")
        for i, cell in enumerate(column):
            color = "k" if col < 2 else ("tab:green" if cell.startswith("✓") else "tab:red")
            tab.text(x, 0.86 - i * 0.086, cell, fontsize=size, family="monospace", va="top", color=color)
        x += width / sum(widths)
    tab.set_title(f"the first {len(first)} test questions, answered greedily after the last epoch", fontsize=10)
    return fig
