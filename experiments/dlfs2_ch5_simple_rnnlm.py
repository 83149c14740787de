"""Train SimpleRnnlm on the first 1,000 PTB words (DLFS2 §5.5.4, ch05/train.py; book Figure 5-33).

The book's ``SimpleRnnlm`` (Embedding - TimeRNN, stateful - Affine; D = H = 100) on the first 1,000
words of PTB's training set (vocabulary = the 418 ids that occur), truncated BPTT with batch 10,
T = 5, plain SGD with learning rate 0.1, 100 epochs of 19 steps. The book prints the perplexity
once an epoch: it falls from about 400 to single digits (the model memorises the 1,000 words).

Quick mode (``--quick``, no PTB): the same model and settings on 5,000 words of the generated
order-1 Markov language (V = 10), 30 epochs. The language's exact perplexity is the floor that a
model can reach on text it has not seen; the train perplexity falls *below* it (3.64 after 30
epochs) because the network memorises its 5,000 words, as the book's does its 1,000. The figure
therefore also draws the perplexity on 5,000 fresh words of the language after every epoch
(DLFS2's ``eval_perplexity``): it stays above the floor, lowest (4.44) at epoch 10, and rises to
4.98 as the memorising goes on (true 4.23).

Writes ``simple_rnnlm.png`` (perplexity per epoch) and ``result.json``.
"""

from __future__ import annotations

import jax

from fnn import lm, optim
from fnn.models import rnnlm
from fnn_experiments import _common as ex

NAME = "dlfs2_ch5_simple_rnnlm"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--grad": {"choices": ["autodiff", "manual"], "default": "manual"},
    "--epochs": {"type": "count"},
}


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    cfg, corpus, lang = ex.simple_rnnlm_setting(args)
    V = cfg["vocab_size"]
    truth = {}
    if args.quick:
        from fnn.data.corpus import sample, true_perplexity

        fresh = sample(lang, 5001, seed=args.seed + 1000)  # not the training sample (seed + 1)
        truth = {"true_perplexity": lang.perplexity,
                 "true_model_fresh_perplexity": true_perplexity(lang, fresh)}
    model = rnnlm.simple_rnnlm(V, cfg["wordvec_size"], cfg["hidden_size"])
    per_epoch = (len(corpus) - 1) // (cfg["batch_size"] * cfg["time_size"])
    with ex.Timer() as timer:
        ts, history = lm.fit_lm(model, optim.sgd(cfg["lr"]), corpus, key=jax.random.key(args.seed),
                                epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                                time_size=cfg["time_size"], grad=args.grad,
                                eval_interval=per_epoch, val_corpus=fresh if args.quick else None,
                                progress=args.progress, desc=NAME)
    metrics = {"first_epoch_perplexity": history["ppl"][0],
               "final_train_perplexity": history["ppl"][-1], "train_seconds": history["seconds"],
               **truth}
    if args.quick:
        metrics["fresh_text_perplexity"] = history["val_ppl"][-1]
        metrics["best_fresh_text_perplexity"] = min(history["val_ppl"])
    history["epoch"] = list(range(1, cfg["epochs"] + 1))
    history["ppl_step"] = history["epoch"]
    fig = ex.plot_ppl(history, f"SimpleRnnlm on {cfg['data']}", true_ppl=truth.get("true_perplexity"),
                      train_label="train text (memorised)" if args.quick else "train")
    ax = fig.axes[0]
    if args.quick:
        ax.plot(history["epoch"], history["val_ppl"], "s--", ms=3, lw=1, c="tab:red",
                label="fresh text of the language")
        ax.legend()
        ax.set_title(f"SimpleRnnlm on {cfg['data']}:\nbelow the true perplexity only on the text it memorised",
                     fontsize=10)
    else:
        ax.set_title("SimpleRnnlm on PTB's first 1,000 words (DLFS2 Fig. 5-33):\nit memorises them",
                     fontsize=10)
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ex.save_figure(fig, out / "simple_rnnlm.png")
    path = ex.save_result(out, NAME, args, config=cfg, metrics=metrics, seconds=timer.seconds,
                          history=history, book={"first_epoch_perplexity": 400},
                          book_ref={"section": "DLFS2 §5.5.4", "figures": ["Fig. 5-33"],
                                    "script": "ch05/train.py", "approx": ["first_epoch_perplexity"],
                                    "quick_differs": True,
                                    "note": "on PTB's first 1,000 words; it then falls to single digits"})
    lines = [f"perplexity per epoch: {history['ppl'][0]:.1f} -> {history['ppl'][-1]:.2f} "
             f"(book: ~400 -> single digits on PTB's first 1,000 words)"]
    if args.quick:
        lines.append(f"fresh text {metrics['fresh_text_perplexity']:.2f} (best "
                     f"{metrics['best_fresh_text_perplexity']:.2f}), true perplexity {truth['true_perplexity']:.2f}")
    ex.report([*lines, f"wrote {out / 'simple_rnnlm.png'} and {path}"])
    return {"config": cfg, "metrics": metrics, "history": history}


if __name__ == "__main__":
    main()
