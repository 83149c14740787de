"""Vanishing and exploding gradients through time, and gradient clipping (DLFS2 §6.1, Figures 6-8/6-9,
ch06/rnn_gradient_graph.py and ch06/clip_grads.py).

1. The book's experiment: dh = ones (N = 2, H = 3) multiplied T = 20 times by Wh^T, the norm
   ``||dh|| / N`` plotted per step, for ``Wh = randn(3, 3)`` (seed 3: grows exponentially, the book's
   Figure 6-8) and ``Wh = 0.5 * randn(3, 3)`` (shrinks exponentially, Figure 6-9).
2. The same through fnn's RNN cell with its tanh (hand-written backward, step by step): the norm of
   dL/dh_t for a loss on the last step only, T = 30, for a small and a large Wh scale; tanh'(.)
   <= 1 damps the gradient, but a large Wh still makes it explode.
3. Clipping (DLFS2 §6.1.4): SimpleRnnlm trained with SGD at a large learning rate (2.0) with and
   without ``clip_by_global_norm(0.25)`` on the generated order-1 language (quick) or on PTB's first
   10,000 words (full); the loss curves and the global gradient norm per step.

Writes ``gradient_norms.png``, ``clipping.png`` and ``result.json``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fnn import lm, optim
from fnn.data.corpus import bptt_batches
from fnn.layers import recurrent as R
from fnn.models import rnnlm
from fnn.step import TrainState, loss_and_grads
from fnn_experiments import _common as ex

NAME = "dlfs2_ch6_rnn_gradient_graph"


def book_norms(scale: float, N: int = 2, H: int = 3, T: int = 20, seed: int = 3) -> list[float]:
    """DLFS2 ch06/rnn_gradient_graph.py: ||dh|| / N after each of T products dh <- dh Wh^T."""
    Wh = np.random.RandomState(seed).randn(H, H) * scale  # the book's draw
    dh, norms = np.ones((N, H)), []
    for _ in range(T):
        dh = dh @ Wh.T
        norms.append(float(np.sqrt(np.sum(dh ** 2)) / N))
    return norms


def cell_norms(scale: float, *, N: int = 2, D: int = 4, H: int = 16, T: int = 30,
               seed: int = 0) -> list[float]:
    """||dL/dh_t|| / N for t = T .. 1 through fnn's RNN cell (forward all, then backward)."""
    k = jax.random.split(jax.random.key(seed), 3)
    params = {"Wx": jax.random.normal(k[0], (D, H)) / np.sqrt(D),
              "Wh": scale * jax.random.normal(k[1], (H, H)) / np.sqrt(H), "b": jnp.zeros((H,))}
    xs = jax.random.normal(k[2], (N, T, D))
    h, caches = jnp.zeros((N, H)), []
    for t in range(T):
        h, cache = R.rnn_cell.forward(params, (xs[:, t], h))
        caches.append(cache)
    dh, norms = jnp.ones((N, H)), []
    for cache in reversed(caches):
        norms.append(float(jnp.linalg.norm(dh) / N))
        _, (_, dh) = R.rnn_cell.backward(params, cache, dh)
    return norms


def clipping_run(corpus, V: int, max_grad: float | None, *, lr: float, epochs: int, seed: int):
    """Train SimpleRnnlm with SGD (optionally clipped); per step the loss and the global grad norm."""
    model = rnnlm.simple_rnnlm(V, 100, 100)
    opt = optim.sgd(lr, max_grad)
    params, _ = model.init(jax.random.key(seed))
    ts = TrainState(params, lm.initial_state(model, params, 10, 5), opt.init(params))
    grad_fn = loss_and_grads(model, "manual")

    @jax.jit
    def run(ts, xs, ys):
        def body(ts, b):
            loss, grads, state = grad_fn(ts.params, ts.state, b[0], b[1])
            updates, opt_state = opt.update(grads, ts.opt_state, ts.params)
            return TrainState(optax.apply_updates(ts.params, updates), state, opt_state), (
                loss, optax.tree.norm(grads))
        return jax.lax.scan(body, ts, (xs, ys))

    losses, norms, time_idx = [], [], 0
    for _ in range(epochs):
        xs, ys, time_idx = bptt_batches(corpus, 10, 5, time_idx=time_idx)
        ts, (loss, norm) = run(ts, jnp.asarray(xs), jnp.asarray(ys))
        losses += np.asarray(loss).tolist()
        norms += np.asarray(norm).tolist()
    return losses, norms


def main(argv=None) -> dict:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    p = ex.parser(NAME, __doc__)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    with ex.Timer() as timer:
        book = {"Wh=randn": book_norms(1.0), "Wh=0.5*randn": book_norms(0.5)}
        cells = {f"Wh scale {s}": cell_norms(s, seed=args.seed) for s in (0.5, 4.0)}
        if args.quick:
            from fnn.data.corpus import generated_corpus

            corpus = generated_corpus(5000, vocab_size=10, seed=args.seed)[0]
            data, epochs = "generated order-1 language, V=10, 5,000 words", 3
        else:
            from fnn.data.ptb import load_ptb

            corpus = load_ptb("train")[0][:10_000]
            data, epochs = "PTB train, first 10,000 words", 3
        V = int(corpus.max()) + 1
        clip = {str(m): clipping_run(corpus, V, m, lr=2.0, epochs=epochs, seed=args.seed)
                for m in (None, 0.25)}

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for name, norms in book.items():
        axes[0].plot(np.arange(1, 21), norms, "o-", ms=3, label=name)
    axes[0].set(xlabel="time step", ylabel="||dh|| / N", yscale="log",
                title="the book's dh <- dh Wh^T (no tanh; Fig. 6-8, 6-9)")
    for name, norms in cells.items():
        axes[1].plot(np.arange(len(norms)), norms, label=name)
    axes[1].set(xlabel="steps back from the loss", ylabel="||dL/dh_t|| / N", yscale="log",
                title="through fnn's RNN cell (with tanh)")
    for ax in axes:
        ax.legend()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("Gradients through time explode or vanish with the scale of Wh (DLFS2 §6.1.3)")
    ex.save_figure(fig, out / "gradient_norms.png")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for name, (losses, norms) in clip.items():
        label = "no clipping" if name == "None" else f"clipped to norm {name}"
        axes[0].plot(losses, lw=0.8, label=label)
        axes[1].plot(norms, lw=0.8, label=label)
    axes[0].axhline(np.log(V), c="k", ls=":", lw=1, label=f"uniform guess, ln {V} = {np.log(V):.2f}")
    axes[0].set(xlabel="iteration", ylabel="loss", title="training loss")
    axes[1].axhline(0.25, c="k", ls=":", lw=1, label="threshold 0.25: larger norms are scaled down to it")
    axes[1].set(xlabel="iteration", ylabel="global gradient norm (before clipping)", yscale="log",
                title="gradient norm")
    for ax in axes:
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(f"Gradient clipping (DLFS2 §6.1.4): SimpleRnnlm, SGD lr 2.0, {data}")
    ex.save_figure(fig, out / "clipping.png")

    metrics = {"book_norm_step20": {k: v[-1] for k, v in book.items()},
               "cell_norm_T_back": {k: v[-1] for k, v in cells.items()},
               "clipping_final_loss": {k: float(np.mean(v[0][-20:])) for k, v in clip.items()},
               "clipping_max_grad_norm": {k: float(np.max(v[1])) for k, v in clip.items()}}
    path = ex.save_result(out, NAME, args, config={"data": data, "lr": 2.0, "epochs": epochs},
                          metrics=metrics, seconds=timer.seconds,
                          book_ref={"section": "DLFS2 §6.1", "figures": ["Fig. 6-8", "Fig. 6-9"],
                                    "script": "ch06/rnn_gradient_graph.py, clip_grads.py",
                                    "note": "the book draws these curves and prints no number"},
                          history={"book": book, "cells": cells,
                                   "clipping": {k: {"loss": v[0], "grad_norm": v[1]}
                                                for k, v in clip.items()}})
    ex.report([f"book: ||dh|| after 20 steps {metrics['book_norm_step20']}",
               f"RNN cell: ||dh|| 30 steps back {metrics['cell_norm_T_back']}",
               f"final loss (mean of last 20 steps) {metrics['clipping_final_loss']}",
               f"wrote {out} ({path.name})"])
    return metrics


if __name__ == "__main__":
    main()
