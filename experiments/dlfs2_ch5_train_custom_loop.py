"""The training loop of a language model written out, as the book's ch05/train_custom_loop.py (DLFS2 §5.5.3).

``fnn.lm.fit_lm`` hides the loop of truncated BPTT: it builds each epoch's mini-batches at once
(`fnn.data.corpus.bptt_batches`) and scans the training step over them inside one compiled
program. The book first writes that loop by hand, and so does this experiment, line for line:

* the corpus read at ``batch_size`` places spread evenly over it (``offsets = [i * jump]``, with
  ``jump = (len(corpus) - 1) // batch_size``): row i of a mini-batch is the next ``time_size``
  words read from its own place, and the read position ``time_idx`` keeps advancing, across
  epochs too, so that each row's text goes on where the previous batch stopped;
* one training step per mini-batch (`fnn.step.make_step`, jitted: gradient by the book's
  hand-written backward, SGD), the recurrent state carried from batch to batch;
* the perplexity of each epoch, ``exp(total_loss / loss_count)``: e to the mean cross-entropy
  loss (§5.5.2), printed once an epoch as the book's loop does (§5.5.3).

Then the same model from the same initial parameters is trained by ``fit_lm``, and the two
perplexity curves are compared: they agree to float32 rounding, so ``fit_lm`` is this loop.

Full mode: the book's setting, SimpleRnnlm (D = H = 100) on PTB's first 1,000 words, batch 10,
T = 5, SGD lr 0.1, 100 epochs; the book's perplexity falls from about 400 to single digits. Quick
mode (``--quick``, no PTB): 5,000 words of the generated order-1 Markov language (V = 10), 30 epochs.

Writes ``train_custom_loop.png`` (both perplexity curves, and their relative difference) and
``result.json``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from fnn import lm, optim
from fnn.models import rnnlm
from fnn.step import TrainState, make_step
from fnn_experiments import _common as ex

NAME = "dlfs2_ch5_train_custom_loop"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--grad": {"choices": ["autodiff", "manual"], "default": "manual",
               "help": "the book's hand-written backward (default) or jax.grad"},
    "--epochs": {"type": "count", "help": "default 100, or 30 with --quick"},
}
AGREE = 1e-5  # the largest relative difference of the two perplexity curves that float32 rounding explains


def LESSON(result: dict) -> None:
    """The loop written out and fit_lm train the same model: the same perplexity every epoch."""
    m = result["metrics"]
    assert m["max_relative_difference"] < AGREE, f"the written-out loop and fit_lm differ: {m}"
    assert m["final_perplexity"]["loop"] < 0.7 * m["first_epoch_perplexity"]["loop"], f"it did not learn: {m}"


def train_by_hand(model, optimizer, corpus: np.ndarray, train: TrainState, cfg: dict) -> list[float]:
    """The book's train_custom_loop.py: the mini-batches read from `batch_size` places, one step each,
    the recurrent state carried from `train`'s (whose buffers the steps donate); returns the
    perplexity of each epoch, exp of the epoch's mean loss (DLFS2 §5.5.2-5.5.3)."""
    batch_size, time_size = cfg["batch_size"], cfg["time_size"]
    xs, ts = corpus[:-1], corpus[1:]  # input words, and the word that follows each
    data_size = len(xs)
    max_iters = data_size // (batch_size * time_size)
    jump = (len(corpus) - 1) // batch_size
    offsets = [i * jump for i in range(batch_size)]
    step = jax.jit(make_step(model, optimizer, grad=cfg["grad"]), donate_argnums=0)
    key = jax.random.key(0)  # SimpleRnnlm draws nothing (no dropout); make_step takes a key anyway
    time_idx, ppl_list = 0, []
    for _epoch in range(cfg["epochs"]):
        total_loss, loss_count = 0.0, 0
        for _iter in range(max_iters):
            batch_x = np.empty((batch_size, time_size), np.int32)
            batch_t = np.empty((batch_size, time_size), np.int32)
            for t in range(time_size):
                for i, offset in enumerate(offsets):
                    batch_x[i, t] = xs[(offset + time_idx) % data_size]
                    batch_t[i, t] = ts[(offset + time_idx) % data_size]
                time_idx += 1
            train, metrics = step(train, (jnp.asarray(batch_x), jnp.asarray(batch_t)), key)
            total_loss += float(metrics["loss"])  # a host round trip per step: the plain loop's price
            loss_count += 1
        ppl_list.append(float(np.exp(total_loss / loss_count)))
    return ppl_list


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    cfg, corpus, _ = ex.simple_rnnlm_setting(args)
    V = cfg["vocab_size"]
    model = rnnlm.simple_rnnlm(V, cfg["wordvec_size"], cfg["hidden_size"])
    optimizer = optim.sgd(cfg["lr"])
    key = jax.random.key(args.seed)
    params, _ = model.init(key)

    def start():  # the same initial parameters, reset state and optimizer state for both runs
        return TrainState(params, lm.initial_state(model, params, cfg["batch_size"], cfg["time_size"]),
                          optimizer.init(params))

    per_epoch = (len(corpus) - 1) // (cfg["batch_size"] * cfg["time_size"])
    with ex.Timer() as timer:
        with ex.Timer() as loop_timer:
            by_hand = train_by_hand(model, optimizer, corpus, jax.tree.map(jnp.copy, start()), cfg)
        _, history = lm.fit_lm(model, optimizer, corpus, key=key, epochs=cfg["epochs"],
                               batch_size=cfg["batch_size"], time_size=cfg["time_size"], grad=args.grad,
                               eval_interval=per_epoch, train_state=start(), progress=args.progress, desc=NAME)
    by_fit = history["ppl"]
    rel = np.abs(np.asarray(by_hand) - np.asarray(by_fit)) / np.asarray(by_fit)
    metrics = {"first_epoch_perplexity": {"loop": by_hand[0], "fit_lm": by_fit[0]},
               "final_perplexity": {"loop": by_hand[-1], "fit_lm": by_fit[-1]},
               "max_relative_difference": float(rel.max()),
               "seconds": {"loop": loop_timer.seconds, "fit_lm": history["seconds"]}}
    epochs = np.arange(1, cfg["epochs"] + 1)
    fig, (ax, ax_d) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True, height_ratios=(3, 1),
                                   layout="constrained")
    ax.plot(epochs, by_hand, "o", ms=4, mfc="none", label="the loop written out (train_custom_loop.py)")
    ax.plot(epochs, by_fit, "-", lw=1.2, label="fnn.lm.fit_lm (scanned batches)")
    ax.set(ylabel="perplexity (train, per epoch)", yscale="log" if max(by_fit) / min(by_fit) > 10 else "linear",
           title=f"SimpleRnnlm on {cfg['data']}:\nthe book's loop and fit_lm train the same model (DLFS2 §5.5.3)")
    ax.legend()
    ax_d.semilogy(epochs, np.maximum(rel, 1e-9), ".-", lw=0.8, c="0.3")
    ax_d.axhline(AGREE, ls="--", c="tab:red", lw=0.8, label=f"allowed for float32 rounding: {AGREE:g}")
    ax_d.set(xlabel="epoch", ylabel="|loop - fit_lm|\n/ fit_lm", ylim=(None, AGREE * 30))
    ax_d.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_d.legend(loc="upper left", fontsize=8)
    ex.save_figure(fig, out / "train_custom_loop.png")
    path = ex.save_result(out, NAME, args, config=cfg, metrics=metrics, seconds=timer.seconds,
                          history={"loop": by_hand, "fit_lm": by_fit}, book={"first_epoch_perplexity": {"loop": 400}},
                          book_ref={"section": "DLFS2 §5.5.3", "script": "ch05/train_custom_loop.py",
                                    "approx": ["first_epoch_perplexity.loop"], "quick_differs": True,
                                    "note": "on PTB's first 1,000 words; it then falls to single digits"})
    ex.report([f"perplexity per epoch, the loop: {by_hand[0]:.1f} -> {by_hand[-1]:.2f}; fit_lm: {by_fit[0]:.1f} -> "
               f"{by_fit[-1]:.2f}; largest relative difference {rel.max():.2e} (book: ~400 -> single digits)",
               f"seconds: the loop {loop_timer.seconds:.1f}, fit_lm {history['seconds']:.1f}",
               f"wrote {out} ({path.name})"])
    return {"config": cfg, "metrics": metrics}


if __name__ == "__main__":
    main()
