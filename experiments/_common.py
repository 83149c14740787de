"""What the experiments share: arguments, output folder, result.json, figures, and the helpers that
several experiments of one chapter use (the experiments never import each other; they import this).

An experiment is ``experiments/<chapter>_<what>.py`` (installed as the package ``fnn_experiments``)
with ``main(argv=None) -> dict``. It parses ``--quick``, ``--seed`` and ``--out`` with `parser`,
runs, and writes its PNG figure(s) and a ``result.json`` (`save_result`: config, metrics, seconds,
versions, and the book's numbers and section beside fnn's) into the output folder (default
``results/<name>/``). ``--quick`` runs on the embedded digits or a generated corpus in seconds; the
full mode uses full MNIST or PTB (``$FNN_DATA_DIR``; see `fnn.data`). Figures are drawn with
matplotlib's Agg backend, which `parser` selects: experiments write files, they never open windows.

* every experiment: `parser`, `output_dir`, `load_data`, `Timer`, `save_result`, `save_figure`,
  `report`, `versions`, `plot_history`;
* DLFS1 ch2 (perceptrons): `plot_points`, `plot_gate`, `legend_below`;
* DLFS1 ch6 (loss curves on MNIST): `setup`, `train_curves`, `smooth`, `loss_figure`, `MARKERS`;
* DLFS1 ch6-7 (gradient checks of batch norm and SimpleConvNet): `three_gradients`,
  `gradient_table`, `plot_gradient_check`;
* DLFS1 ch7-8 (CNNs on the quick digits): `moved_digits`;
* DLFS2 ch5-7 (language models): `simple_rnnlm_setting`, `load_corpora`, `plot_ppl`, `load_params`,
  `save_lm`, `load_lm`, `next_word_tv`, `plot_next_words`.
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
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from fnn import cli
from fnn import perceptron as P
from fnn.files import write_atomic
from fnn.multi import fit_many
from fnn.report import leaves as book_paths  # {"a.b": value}: the key paths of book and metrics

# ---------------------------------------------------------------------------------------------
# Every experiment
# ---------------------------------------------------------------------------------------------


def parser(name: str, doc: str | None, options: dict | None = None) -> argparse.ArgumentParser:
    """The experiment's argument parser (`fnn.cli.parser`): the options every experiment has, then
    `options` (its ``OPTIONS``), and --quick's measured time; selects matplotlib's Agg backend."""
    matplotlib.use("Agg")  # experiments write files; they never open windows
    return cli.parser(name, doc, options, quick_seconds=cli.quick_time(Path(__file__).parent, name))


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
    """`x` as plain JSON values: arrays as lists, paths as strings, NaN and infinities as None."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):  # numpy / jax arrays and scalars
        return _jsonable(x.tolist())
    if isinstance(x, float) and not np.isfinite(x):
        return None  # JSON has no NaN or infinity; a reader sees null
    return x


def _is_number(v) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            and bool(np.isfinite(v)))


def _check_book(book: dict, book_ref: dict | None) -> None:
    """The book's numbers are finite numbers or lists of them; `book_ref` names a section."""
    leaves = book_paths(book)
    for key, value in leaves.items():
        values = np.asarray(value, dtype=object).ravel() if isinstance(value, (list, tuple)) else [value]
        if not len(values) or not all(_is_number(v) for v in values):
            raise ValueError(f"save_result: book[{key!r}] must be a finite number or a list of finite "
                             f"numbers, got {value!r}")
    if book_ref is None:
        if book:
            raise ValueError("save_result: book numbers need book_ref (the section they come from)")
        return
    if not isinstance(book_ref.get("section"), str) or not book_ref["section"]:
        raise ValueError(f"save_result: book_ref['section'] must be a non-empty string such as "
                         f"'DLFS1 §5.7.4', got {book_ref.get('section')!r}")
    unknown = set(book_ref) - {"section", "figures", "script", "approx", "quick_differs", "note"}
    if unknown:
        raise ValueError(f"save_result: book_ref has unknown keys {sorted(unknown)}; expected section, "
                         f"figures, script, approx, quick_differs, note")
    if not isinstance(book_ref.get("quick_differs", False), bool):
        raise ValueError(f"save_result: book_ref['quick_differs'] must be True or False, got "
                         f"{book_ref['quick_differs']!r}")
    figures = book_ref.get("figures", [])
    if not isinstance(figures, (list, tuple)) or not all(isinstance(f, str) for f in figures):
        raise ValueError(f"save_result: book_ref['figures'] must be a list of strings, got {figures!r}")
    missing = [k for k in book_ref.get("approx", []) if k not in leaves]
    if missing:
        raise ValueError(f"save_result: book_ref['approx'] names {missing}, which are not in book "
                         f"(its numbers: {sorted(leaves)})")


def save_result(out: Path, name: str, args: argparse.Namespace, *, config: dict, metrics: dict,
                seconds: float, book: dict | None = None, book_ref: dict | None = None, **extra) -> Path:
    """Write ``out/result.json`` atomically, as strictly valid JSON, and return its path.

    Fields: experiment, quick, seed, config, metrics, seconds, created, versions, book, book_ref and
    `extra` (e.g. per-epoch history). Arrays become lists; NaN and infinities become ``null`` (the
    file is written with ``allow_nan=False``, so no bare ``NaN`` can reach it).

    The book's side, which ``fnn report`` sets beside fnn's:

    * ``book`` — the numbers the book states: ``{key: number, list of numbers, or a dict of
      these}``. Where a number is the book's value of one of fnn's `metrics`, it sits under the
      same key path (``metrics["test_acc"]`` and ``book["test_acc"]``; ``metrics["dW"]["W1"]``
      and ``book["dW"]["W1"]``), so a reader can take the difference; other keys are numbers the
      book states that fnn has no counterpart for. ``{}`` where the book states none.
    * ``book_ref`` — where in the book, ``{"section": "DLFS1 §5.7.4", "figures": ["Fig. 5-30"],
      "script": "ch05/train_neuralnet.py", "approx": ["test_acc"], "quick_differs": True,
      "note": "..."}``: the section (required), the book's figures this experiment draws, the
      book's script, the keys of ``book`` (dotted paths for nested ones, ``"dW.W1"``) that the book
      gives only roughly ("about 0.97", or read off a figure), whether ``--quick`` runs on other
      data than the book's (the embedded digits, a generated corpus), so that its numbers are not
      comparable with the book's, and one line of note.
      ``None`` for an experiment that is not from the books.
    """
    book = {} if book is None else dict(book)
    _check_book(book, book_ref)
    result = {"experiment": name, "quick": bool(args.quick), "seed": args.seed,
              "config": config, "metrics": metrics, "seconds": round(float(seconds), 3),
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "versions": versions(), "book": book, "book_ref": book_ref, **extra}
    path = out / "result.json"
    write_atomic(path, (json.dumps(_jsonable(result), indent=2, allow_nan=False) + "\n").encode())
    return path


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Save a figure as PNG and close it."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_history(history: dict, title: str, axes=None) -> plt.Figure:
    """Loss per iteration and train/test accuracy per epoch, side by side (DLFS1 Fig. 4-11, 4-12).

    Draws into `axes` (two axes) when given, else into a new figure with `title` above both.
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        fig.suptitle(title)
    ax_loss, ax_acc = axes
    loss = np.asarray(history["step_loss"])
    ax_loss.plot(np.arange(1, loss.size + 1), loss, lw=0.6, alpha=0.5, label="mini-batch")
    if loss.size >= 20:
        w = max(loss.size // 50, 5)
        smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
        ax_loss.plot(np.arange(w, loss.size + 1), smooth, lw=1.5, label=f"mean of {w}")
    ax_loss.set(xlabel="iteration", ylabel="loss", title="training loss", ylim=(0, None))
    ax_loss.legend()
    epochs = history["epoch"]
    ax_acc.plot(epochs, history["train_acc"], "o-", ms=3, label="train acc")
    ax_acc.plot(epochs, history["test_acc"], "s--", ms=3, label="test acc")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.0), title="accuracy")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.legend(loc="lower right")
    return ax_loss.figure


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
    ticks = [-0.5, 0, 0.5, 1, 1.5]
    ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), xlabel="$x_1$", ylabel="$x_2$", title=title,
           aspect="equal", xticks=ticks, yticks=ticks)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)


def legend_below(ax, ncol: int = 2, **kwargs) -> None:
    """The legend under the axes, where it hides no data."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, fontsize=8, frameon=False,
              **kwargs)


def plot_gate(ax, params: P.Perceptron, targets, title: str, color: str = "tab:blue",
              names: tuple[str, str] = ("x1", "x2")) -> None:
    """A perceptron's line w · x + b = 0 and the half-plane where it outputs 1, with the four inputs."""
    g = np.linspace(-0.5, 1.5, 201)
    X1, X2 = np.meshgrid(g, g)
    grid = np.stack([X1.ravel(), X2.ravel()], axis=1)  # (G, 2)
    w1, w2 = (float(v) for v in params.w)
    b = float(params.b)
    Y = (grid @ np.array([w1, w2]) + b > 0).reshape(X1.shape)  # float64: the line, not its rounding
    ax.contourf(X1, X2, Y.astype(float), levels=[0.5, 1.5], colors=[color], alpha=0.18)
    if abs(w2) > 1e-12:
        ax.plot(g, -(w1 * g + b) / w2, color=color, lw=1.8,
                label=f"{w1:+.2g} {names[0]} {w2:+.2g} {names[1]} {b:+.2g} = 0")
    plot_points(ax, targets, title)


# ---------------------------------------------------------------------------------------------
# DLFS1 ch6: training-loss curves of 784-100x4-10 networks (ch6_optimizer_compare_mnist,
# ch6_weight_init_compare)
# ---------------------------------------------------------------------------------------------

MARKERS = {"SGD": "o", "Momentum": "x", "AdaGrad": "s", "Adam": "D", "Nesterov": "+", "RMSprop": "v",
           "AdaDelta": "^", "std=0.01": "o", "Xavier": "s", "He": "D", "zeros": "x"}


def smooth(losses: np.ndarray, window: int = 21) -> np.ndarray:
    """Centred moving average of a loss curve, edges padded by reflection (the book's
    ``common/util.smooth_curve`` uses an 11-point Kaiser window; the idea is the same)."""
    half = window // 2
    padded = np.pad(losses, half, mode="reflect")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def loss_figure(curves: dict[str, np.ndarray], title: str, ylim: float, ax=None,
                dashed: Sequence[str] = ()) -> plt.Figure:
    """Smoothed mean training loss per iteration, one line per entry (DLFS1 Figures 6-9, 6-15),
    on a new figure or on `ax`; the entries named in `dashed` drawn dashed."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    for name, loss in curves.items():
        ax.plot(np.arange(1, loss.size + 1), smooth(loss), marker=MARKERS.get(name),
                markevery=max(loss.size // 20, 1), ms=4, label=name, ls="--" if name in dashed else "-")
    ax.set(xlabel="iterations", ylabel="loss", ylim=(0, ylim), title=title)
    ax.legend()
    return ax.figure


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


def train_curves(model, optimizer, data, config, key, *, hparams=None, states=False, progress=True, desc=None):
    """(M, iterations) step losses and (M,) final test accuracies of M networks (``config["seeds"]``,
    or one per entry of `hparams`), and with `states` their final `fnn.step.TrainState` (stacked);
    `progress`, `desc`: as in `fit_many`."""
    (x_train, t_train), (x_test, t_test) = data
    M = config["seeds"] if hparams is None else len(jax.tree_util.tree_leaves(hparams)[0])
    ts, h = fit_many(model, optimizer, (x_train, t_train), jax.random.split(key, M), hparams=hparams,
                     epochs=config["epochs"], batch_size=config["batch_size"],
                     num_batches=config["num_batches"], eval_data={"test": (x_test, t_test)},
                     progress=progress, desc=desc)
    curves = np.asarray(h["step_loss"]), np.asarray(h["test_acc"][:, -1])
    return (*curves, ts) if states else curves


# ---------------------------------------------------------------------------------------------
# DLFS1 ch7-8: CNNs on the quick digits (ch7_train_convnet, ch8_augmentation)
# ---------------------------------------------------------------------------------------------

def moved_digits(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Images x (N, 1, H, W), each moved by whole pixels, a number drawn from [-max_shift, max_shift]
    down and one right (a roll: with ``digits28``, whose 20x20 digits sit in a 4-pixel margin, and
    `max_shift` <= 4, only empty margin wraps around). Handwriting is never exactly centred; the
    embedded digits are."""
    d = rng.integers(-max_shift, max_shift + 1, (len(x), 2))
    return np.stack([np.roll(im, tuple(s), axis=(1, 2)) for im, s in zip(np.asarray(x), d, strict=True)])


# ---------------------------------------------------------------------------------------------
# DLFS1 ch6-7: the book's gradient checks (ch6_batch_norm_gradient_check, ch7_gradient_check)
# ---------------------------------------------------------------------------------------------

GRADIENT_PAIRS = (("backprop", "numerical"), ("backprop", "jax.grad"), ("jax.grad", "numerical"))


def three_gradients(model, params, x, t, h: float, progress: bool = True, sample: int | None = None) -> dict:
    """The book's backprop (``model.manual_grad``), ``jax.grad`` of ``model.loss`` and the numerical
    gradient (`fnn.gradient.numerical_gradient`, central differences of step `h`) of a `Model`'s
    training loss at `params`, as NumPy pytrees: ``{"backprop": ..., "jax.grad": ..., "numerical": ...}``.
    `sample`: perturb only that many coordinates of every parameter (all of a smaller one; drawn
    with seed 0, `fnn.gradient.sample_indices`); the others are NaN in the numerical gradient.
    Call it under ``jax.enable_x64(True)`` with float64 params and inputs (DLFS1 §5.7.3)."""
    from fnn.gradient import numerical_gradient

    state = model.init(jax.random.key(0))[1]

    def loss(p):
        return model.loss(p, state, x, t)[0]

    grads = {"backprop": model.manual_grad(params, state, x, t)[1], "jax.grad": jax.grad(loss)(params),
             "numerical": numerical_gradient(loss, params, h, sample=sample, progress=progress)}
    return jax.device_get(grads)


def gradient_table(grads: dict, names: Sequence[str]) -> dict:
    """Per pair of `GRADIENT_PAIRS` ("backprop vs numerical", ...) and parameter name, the mean
    absolute difference (the number the book's gradient_check scripts print), over the
    coordinates both gradients have (a sampled numerical gradient is NaN elsewhere)."""
    def mean_abs(a, b):
        d = np.abs(np.asarray(a) - np.asarray(b))
        return float(np.mean(d[~np.isnan(d)]))

    return {f"{a} vs {b}": {k: mean_abs(grads[a][k], grads[b][k]) for k in names} for a, b in GRADIENT_PAIRS}


def plot_gradient_check(ax, table: dict, names: Sequence[str], title: str, book: dict | None = None) -> None:
    """Bars of `gradient_table` per parameter on a log scale (a difference of exactly 0 is no bar,
    a "0" on the axis); the book's printed backprop-vs-numerical numbers as black diamonds."""
    width = 0.8 / len(table)
    floor = 1e-20
    for i, (pair, row) in enumerate(table.items()):
        xs = np.arange(len(names)) + (i - (len(table) - 1) / 2) * width
        values = np.array([row[k] for k in names])
        ax.bar(xs, np.where(values > 0, values, np.nan), width, label=pair, color=f"C{i}")
        for x in xs[values == 0]:
            ax.text(x, floor * 3, "0", ha="center", va="bottom", fontsize=7, color=f"C{i}")
    if book:
        xs = [j - (len(table) - 1) / 2 * width for j, k in enumerate(names) if k in book]
        ax.plot(xs, [max(book[k], floor * 30) for k in names if k in book], "kD", ms=5,
                label="the book's printout (backprop vs numerical; 0 drawn low)")
    ax.set(yscale="log", ylim=(floor, 1), xticks=range(len(names)), xticklabels=names,
           ylabel="mean |difference|", title=title)
    ax.legend(fontsize=7, loc="upper left")


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


def simple_rnnlm_setting(args) -> tuple[dict, np.ndarray, object]:
    """DLFS2 ch05's setting (train.py, train_custom_loop.py; §5.5.3-5.5.4): SimpleRnnlm D = H = 100,
    batch 10, T = 5, SGD lr 0.1, 100 epochs on PTB's first 1,000 words (V = their max id + 1, as the
    book); quick: 30 epochs on 5,000 words of the generated order-1 language. (config, corpus, the
    generated language or None)."""
    cfg = {"wordvec_size": 100, "hidden_size": 100, "batch_size": 10, "time_size": 5, "lr": 0.1,
           "epochs": args.epochs or (30 if args.quick else 100), "grad": args.grad}
    lang = None
    if args.quick:
        from fnn.data.corpus import generated_corpus

        corpus, _, _, lang = generated_corpus(5000, vocab_size=10, order=1, seed=args.seed)
        cfg["data"] = "generated order-1 Markov language, V=10, 5,000 words"
    else:
        from fnn.data.ptb import load_ptb

        corpus = load_ptb("train")[0][:1000]
        cfg["data"] = "PTB train, first 1,000 words"
    corpus = np.asarray(corpus)
    cfg["vocab_size"] = int(corpus.max()) + 1  # the book's vocab_size = max id + 1
    return cfg, corpus, lang


def plot_ppl(history: dict, title: str, ylim=None, true_ppl=None, *, test_ppl=None,
             train_label: str = "train") -> plt.Figure:
    """Train perplexity against the iteration, with the language's true perplexity when known and
    the test perplexity of the trained model (a marker after the last iteration) when given."""
    fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
    ax.plot(history["ppl_step"], history["ppl"], lw=1, label=train_label)
    if true_ppl is not None:
        ax.axhline(true_ppl, ls="--", c="k", lw=1, label=f"true perplexity {true_ppl:.2f}")
    if test_ppl is not None:
        ax.plot([history["ppl_step"][-1]], [test_ppl], "D", c="tab:red", ms=6,
                label=f"test (unseen text) {test_ppl:.2f}")
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


LM_BUILDERS = ("better_rnnlm",)  # the models `save_lm` records and `load_lm` rebuilds


def save_lm(folder: Path, params, *, model: str, epoch: int | None = None, **settings) -> Path:
    """A trained language model's parameters as an `fnn.checkpoint` in `folder` (replacing what an
    earlier run saved there), with the model's name and settings (the `fnn.models.rnnlm` builder's
    arguments) that `load_lm` rebuilds it from, and the `epoch` they are from."""
    from fnn import checkpoint

    if model not in LM_BUILDERS:
        raise ValueError(f"save_lm: model {model!r}, expected one of {LM_BUILDERS}")
    return checkpoint.save(folder, params, config={"model": model, "settings": settings, "epoch": epoch}, keep=1)


def load_lm(folder: Path, name: str, writer: str):
    """(model, params, settings) from the newest checkpoint `save_lm` wrote into `folder`. `name` is
    the experiment asking and `writer` the one that writes `folder`; both are named in the errors."""
    from fnn import checkpoint
    from fnn.models import rnnlm

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SystemExit(f"{name}: --params {folder} is a file, expected the folder of ckpt-*.json that "
                         f"`fnn run {writer}` writes (results/{writer}/params)")
    try:
        ckpt = checkpoint.latest(folder) if folder.is_dir() else None
    except checkpoint.CheckpointError as e:
        raise SystemExit(f"{name}: --params {folder}: {e}") from e
    if ckpt is None:
        hint = f"; did you mean {folder / 'params'}?" if (folder / "params").is_dir() else ""
        raise SystemExit(f"{name}: no trained model in {folder}, expected the parameters that "
                         f"`fnn run {writer}` writes to results/{writer}/params{hint}")
    config = ckpt.meta["config"]
    built, settings = config.get("model"), config.get("settings")
    if built not in LM_BUILDERS or not isinstance(settings, dict):
        raise SystemExit(f"{name}: {ckpt.path} holds no language model saved by save_lm (model {built!r}, "
                         f"expected one of {LM_BUILDERS} with its settings)")
    try:
        model = getattr(rnnlm, built)(**settings)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"{name}: {ckpt.path} holds settings {settings} that rnnlm.{built} refuses ({e})") from e
    target = jax.eval_shape(lambda: model.init(jax.random.key(0))[0])
    return model, checkpoint.restore(ckpt, target), {"model": built, **settings, "epoch": config.get("epoch")}


def next_word_tv(ids, lang, banned=()) -> float:
    """How far a text's next-word statistics are from a generated language's (`fnn.data.corpus`):
    the total-variation distance between the text's next-word frequencies after each context (the
    previous ``lang.order`` words) and ``P(w | context)``, averaged with the contexts' counts in the
    text as weights. `banned` words (never generated) are taken out of P, which is renormalised."""
    ids = np.asarray(ids)
    V, k = lang.vocab_size, lang.order
    P = np.array(lang.P, float)
    P[:, list(banned)] = 0.0
    P /= P.sum(1, keepdims=True)
    ctx = np.zeros(len(ids) - k, np.int64)
    for j in range(k):
        ctx = ctx * V + ids[j:len(ids) - k + j]
    counts = np.zeros_like(P)
    np.add.at(counts, (ctx, ids[k:]), 1)
    n = counts.sum(1)
    seen = n > 0
    emp = counts[seen] / n[seen, None]
    return float(np.sum(n[seen] * 0.5 * np.abs(emp - P[seen]).sum(1)) / n.sum())


def plot_next_words(ids, lang, id_to_word: dict, title: str, banned=()) -> plt.Figure:
    """Two heat maps: the generated language's P(next word | context) and a text's next-word
    frequencies, for the 8 contexts commonest in the text; `banned` words' columns are hatched."""
    V, k = lang.vocab_size, lang.order
    ids = np.asarray(ids)
    ctx = np.zeros(len(ids) - k, np.int64)
    for j in range(k):
        ctx = ctx * V + ids[j:len(ids) - k + j]
    top = np.argsort(-np.bincount(ctx, minlength=lang.P.shape[0]))[:8]
    emp = np.stack([np.bincount(ids[k:][ctx == c], minlength=V) for c in top]).astype(float)
    emp /= np.maximum(emp.sum(1, keepdims=True), 1)
    names = [" ".join(id_to_word[(c // V ** (k - 1 - j)) % V] for j in range(k)) for c in top]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, layout="constrained")
    for ax, mat, panel in ((axes[0], lang.P[top], "the language: P(next word | context)"),
                           (axes[1], emp, f"the generated text ({len(ids):,} words): frequencies")):
        im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set(xlabel="next word", title=panel, xticks=range(V), yticks=range(len(top)))
        ax.set_xticklabels([id_to_word[w] + ("\nskipped" if w in banned else "") for w in range(V)])
        for w in banned:
            ax.add_patch(plt.Rectangle((w - 0.5, -0.5), 1, len(top), fill=False, hatch="///", ec="0.8", lw=0))
    axes[0].set_yticklabels(names)
    axes[0].set(ylabel=f"the 8 commonest contexts (previous {k} words)")
    fig.colorbar(im, ax=axes, label="probability / frequency", shrink=0.9)
    fig.suptitle(title)
    return fig


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
