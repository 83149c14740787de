"""Two-layer net by mini-batch SGD, numerical vs backprop (DLFS1 §4.5, Fig. 4-11/4-12; book: ~0.94).
Book: test accuracy about 0.94 after 10,000 iterations (read off Fig. 4-12); numerical gradients are slow.

The book's chapter-4 TwoLayerNet (784-50-10, *sigmoid* hidden layer, weights N(0, 0.01^2)) trained
by SGD, lr 0.1, mini-batches of 100 (§4.5.2), with train and test accuracy once an epoch (§4.5.3).
The book computes the gradient numerically in the text and switches to backprop
(``network.gradient``) in its script because the numerical route is too slow to train with; so do
we: training uses backprop, and one step of each route is timed on the same mini-batch.

Full mode: MNIST, 10,000 iterations (about 16.7 epochs, Fig. 4-11 and 4-12); the numerical step is
timed on the 784-50-10 net (39,760 parameters, 79,520 loss evaluations on a batch of 100).
``--quick``: the embedded digits upsampled to 28x28, 1,400 iterations; the numerical step is
timed on a smaller 64-10-10 net on the 8x8 digits (750 parameters) so that it takes a second.

Writes ``train_neuralnet.png`` (loss per iteration, accuracy per epoch, the two step times) and
``result.json``.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from fnn import data as fdata
from fnn.gradient import numerical_gradient, relative_error
from fnn.models import mlp
from fnn.train import fit
from fnn_experiments import _common as ex

NAME = "ch4_train_neuralnet"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--steps": {"type": "count", "help": "training iterations (default: 10000, or 1400 with --quick)"},
}


def time_one_step(sizes, x, t, seed: int, *, chunk: int = 2048, repeats: int = 20) -> dict:
    """Seconds for one gradient of the sigmoid MLP `sizes` on (x, t): numerical vs backprop.

    In float64, as the book's NumPy: in float32 the numerical gradient (h = 1e-4) of these tiny
    gradients is mostly rounding error.
    """
    with jax.enable_x64(True):
        return _time_one_step(sizes, x, t, seed, chunk=chunk, repeats=repeats)


def _time_one_step(sizes, x, t, seed: int, *, chunk: int, repeats: int) -> dict:
    rng = np.random.default_rng(seed)  # NumPy draws: no JAX program to compile for the init
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        params[f"W{i}"] = jnp.asarray(0.01 * rng.standard_normal((n_in, n_out)))  # the book's init
        params[f"b{i}"] = jnp.zeros(n_out, jnp.float64)
    x, t = jnp.asarray(x, jnp.float64), jnp.asarray(t)

    def loss(p):
        return mlp.loss(p, x, t, activation="sigmoid")

    if repeats > 1:  # a small net: one chunk, jitted whole so that a second call does not recompile
        numerical = jax.jit(lambda p: numerical_gradient(loss, p, chunk=chunk))
    else:  # the book's net: chunk by chunk (jitted as a whole, XLA would hold every chunk at once)
        def numerical(p):
            return numerical_gradient(loss, p, chunk=256)
    backprop = jax.jit(lambda p: mlp.manual_grad(p, x, t, activation="sigmoid")[1])
    t0 = time.perf_counter()
    g_num = jax.block_until_ready(numerical(params))
    first = time.perf_counter() - t0
    if repeats > 1:  # small nets: time a second call, without the compilation
        t0 = time.perf_counter()
        g_num = jax.block_until_ready(numerical(params))
        num_s = time.perf_counter() - t0
    else:
        num_s = first
    g_bp = jax.block_until_ready(backprop(params))
    t0 = time.perf_counter()
    for _ in range(repeats):
        g_bp = backprop(params)
    jax.block_until_ready(g_bp)
    bp_s = (time.perf_counter() - t0) / repeats
    n = sum(v.size for v in params.values())
    return {"net": "-".join(map(str, sizes)), "parameters": int(n), "batch": int(x.shape[0]),
            "loss_evaluations": 2 * int(n), "numerical_seconds": num_s,
            "numerical_includes_compile": repeats <= 1, "backprop_seconds": bp_s,
            "ratio": num_s / bp_s, "max_relative_error": max(relative_error(g_bp, g_num).values())}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    data = ex.load_data(args)
    (x_train, t_train), (x_test, t_test) = data
    config = {"data": "digits28" if args.quick else "mnist",
              "model": "TwoLayerNet 784-50-10, sigmoid (DLFS1 ch4)", "weight_init_std": 0.01,
              "optimizer": "SGD", "learning_rate": 0.1, "batch_size": 100,
              "steps": args.steps or (1400 if args.quick else 10000), "grad": "manual (backprop)"}
    with ex.Timer() as timer:
        if args.quick:
            (x8, t8), _ = fdata.load("digits")
            step = time_one_step((64, 10, 10), x8[:100], t8[:100], args.seed)
        else:
            step = time_one_step((784, 50, 10), x_train[:100], t_train[:100], args.seed, repeats=1)
        model = mlp.model(784, [50], 10, activation="sigmoid", weight_init=0.01)
        _, history = fit(model, optax.sgd(0.1), data, key=jax.random.key(args.seed), steps=config["steps"],
                         batch_size=100, grad="manual", progress=args.progress, desc=NAME)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 0.9]})
    ex.plot_history(history, "", axes=axes[:2])
    ax = axes[2]
    bars = ax.barh(["numerical\ngradient", "backprop"],
                   [step["numerical_seconds"], step["backprop_seconds"]], color=["tab:red", "tab:blue"])
    ax.bar_label(bars, [f"{s * 1e3:.3g} ms" for s in (step["numerical_seconds"],
                                                      step["backprop_seconds"])], padding=3)
    ax.set(xscale="log", xlabel="seconds for one gradient (log scale)",
           title=f"one gradient, net {step['net']}, batch {step['batch']}:\nnumerical is "
                 f"{step['ratio']:.0f}x slower")
    ax.set_xlim(step["backprop_seconds"] / 3, step["numerical_seconds"] * 30)
    fig.suptitle(f"TwoLayerNet (sigmoid) on {config['data']}, SGD lr 0.1, trained by backprop "
                 f"(DLFS1 §4.5, Fig. 4-11, 4-12)")
    ex.save_figure(fig, out / "train_neuralnet.png")

    metrics = {"train_acc": history["train_acc"][-1], "test_acc": history["test_acc"][-1],
               "final_loss": history["train_loss"][-1], "train_seconds": history["seconds"],
               "one_step": step}
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds,
                          history=history, book={"test_acc": 0.94},
                          book_ref={"section": "DLFS1 §4.5", "figures": ["Fig. 4-11", "Fig. 4-12"],
                                    "script": "ch04/train_neuralnet.py", "approx": ["test_acc"],
                                    "quick_differs": True,
                                    "note": "read off Fig. 4-12 (MNIST, 10,000 iterations)"})
    ex.report([f"train acc {metrics['train_acc']:.4f}, test acc {metrics['test_acc']:.4f} (book, "
               f"MNIST: about 0.94) in {history['seconds']:.1f} s",
               f"one gradient of the {step['net']} net on a batch of {step['batch']}: numerical "
               f"{step['numerical_seconds']:.3g} s ({step['loss_evaluations']} loss evaluations), "
               f"backprop {step['backprop_seconds'] * 1e3:.3g} ms: {step['ratio']:.0f}x; they agree "
               f"to a relative error of {step['max_relative_error']:.1e} (float64)",
               f"wrote {out / 'train_neuralnet.png'} and {path}"])
    return {"metrics": metrics, "history": history}


if __name__ == "__main__":
    main()
