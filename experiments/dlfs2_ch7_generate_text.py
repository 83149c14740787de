"""Generate text with an LSTM language model (DLFS2 §7.1, ch07/generate_text.py), and the book's
pretrained ``Rnnlm.pkl``'s test perplexity in fnn (its ch06/eval.py).

Full mode (needs PTB and the book's ``ch06/Rnnlm.pkl``, float16, gate order f, g, i, o; found in
``$FNN_DATA_DIR/book`` or downloaded): load the pickle with the restricted unpickler into fnn's
``Rnnlm``, score the PTB test set with the book's ``eval_perplexity`` protocol (batch 10, T = 35,
stateful from a reset state; the book's own code gives 136.08), then generate 100 words from
"you" (``--start``; several words are a prompt, as the book's ``generate_better_text.py``'s "the
meaning of life is", read before sampling), never producing ``N``, ``<unk>`` or ``$`` (the book's
skip words), ``<eos>`` shown as a line break. With ``--params
results/dlfs2_ch6_rnnlm/params_lstm.npz`` (written by that experiment) the same is done for fnn's
own trained LM, reported beside the book's.

Quick mode (``--quick``): an LSTM LM trained for a few seconds on the generated order-2 Markov
language generates 2,000 words (the first 100 are printed); their next-word statistics are compared
with the language's (total variation distance of the next-word distributions, weighted by
frequency), beside the same distance for 2,000 words drawn from the language itself, which is what
sampling noise alone gives (measured: 0.218 for the model, 0.169 for the language's own sample).

Writes ``generated.txt``, ``generate_text.png`` (quick: next-word frequencies of the generated
text vs the language's; full: the test perplexities) and ``result.json``.
"""

from __future__ import annotations

import jax
import optax

from fnn import lm
from fnn.models import rnnlm
from fnn_experiments import _common as ex

NAME = "dlfs2_ch7_generate_text"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--params": {"type": "path", "help": "params_<family>.npz written by dlfs2_ch6_rnnlm (full mode)"},
    "--start": {"default": "you",
                "help": "the first word or words (full mode; the book's 'you', or its prompt "
                        "'the meaning of life is')"},
    "--length": {"type": "count", "default": 100},
}
SKIP_WORDS = ["N", "<unk>", "$"]


def to_text(ids, id_to_word) -> str:
    return " ".join(id_to_word[i] for i in ids).replace(" <eos>", ".\n")


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    key = jax.random.key(args.seed)
    texts, metrics, start = {}, {}, args.start
    with ex.Timer() as timer:
        if args.quick:
            from fnn.data.corpus import generated_corpus, sample

            corpus, _, id_to_word, lang = generated_corpus(20_000, vocab_size=10, order=2,
                                                          seed=args.seed)
            model = rnnlm.rnnlm(10, 16, 32)
            ts, _ = lm.fit_lm(model, optax.adam(0.01), corpus, key=key, epochs=6, batch_size=20,
                              time_size=10, eval_interval=100, progress=args.progress, desc=NAME)
            ids = lm.generate(model, ts.params, int(corpus[0]), jax.random.key(args.seed + 1),
                              sample_size=max(args.length, 2000))
            texts["fnn (generated language)"] = to_text(ids[: args.length], id_to_word)
            metrics["test_perplexity"] = lm.perplexity(model, ts.params,
                                                       sample(lang, 5001, seed=args.seed + 200))
            metrics["true_perplexity"] = lang.perplexity
            metrics["next_word_tv_distance"] = ex.next_word_tv(ids, lang)
            # the same distance for text drawn from the language itself: what sampling noise alone gives
            metrics["next_word_tv_distance_of_a_true_sample"] = ex.next_word_tv(
                sample(lang, len(ids), seed=args.seed + 300), lang)
            start = id_to_word[int(corpus[0])]
        else:
            from fnn.data.ptb import load_ptb
            from fnn.data.weights import load_book_weights

            _, word_to_id, id_to_word = load_ptb("train")
            test = load_ptb("test")[0]
            skip = [word_to_id[w] for w in SKIP_WORDS]
            unknown = [w for w in args.start.split() if w not in word_to_id]
            if unknown or not args.start.split():
                raise SystemExit(f"{NAME}: --start {args.start!r}: {unknown or 'no words'}, expected words of "
                                 f"PTB's vocabulary (lower case; numbers are N)")
            prompt = [word_to_id[w] for w in args.start.split()]
            models = {"book Rnnlm.pkl": rnnlm.from_book_params(load_book_weights("Rnnlm.pkl"))}
            if args.params is not None:
                models[f"fnn {args.params.name}"] = ex.load_params(args.params)
            for name, params in models.items():
                family = "gru" if "gru" in params else "lstm"
                model = rnnlm.rnnlm(len(word_to_id), family=family)
                metrics[f"{name} test_perplexity"] = lm.perplexity(model, params, test)
                key, k = jax.random.split(key)
                ids = lm.generate(model, params, prompt, k, sample_size=args.length, skip_ids=skip)
                texts[name] = to_text(ids, id_to_word)
    ex.save_figure(_figure(metrics, ids if args.quick else None, lang if args.quick else None,
                           id_to_word), out / "generate_text.png")
    (out / "generated.txt").write_text("".join(f"== {n}\n{t}\n\n" for n, t in texts.items()))
    config = {"start": start, "length": args.length}
    if not args.quick:
        config["skip_words"] = SKIP_WORDS
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds, texts=texts,
                          book={"book Rnnlm.pkl test_perplexity": 136.08},
                          book_ref={"section": "DLFS2 §7.1", "script": "ch07/generate_text.py, ch06/eval.py",
                                    "quick_differs": True,
                                    "note": "the book's code evaluating its Rnnlm.pkl on PTB's test set"})
    ex.report([*(f"{k}: {v:.4f}" for k, v in metrics.items()),
               *(f"--- {n}\n{t}" for n, t in texts.items()), f"wrote {out} ({path.name})"])
    return {"metrics": metrics, "texts": texts}


def _figure(metrics: dict, ids, lang, id_to_word):
    import matplotlib.pyplot as plt

    if lang is None:  # full mode: the test perplexities
        fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
        names = list(metrics)
        bars = ax.barh([n.replace(" test_perplexity", "") for n in names], [metrics[n] for n in names],
                       height=0.5)
        ax.bar_label(bars, [f"{metrics[n]:.2f}" for n in names], padding=3)
        ax.axvline(136.08, c="k", ls="--", lw=1, label="the book's code on Rnnlm.pkl: 136.08")
        ax.set(xlabel="PTB test perplexity (lower is better)", xlim=(0, max(metrics.values()) * 1.25),
               title="language models scored as DLFS2's eval_perplexity (§6.4, §7.1)")
        ex.legend_below(ax, ncol=1)
        return fig
    return ex.plot_next_words(
        ids, lang, id_to_word, f"Next-word distributions (DLFS2 §7.1): total variation distance "
        f"{metrics['next_word_tv_distance']:.3f} (a sample of the language itself: "
        f"{metrics['next_word_tv_distance_of_a_true_sample']:.3f})")


if __name__ == "__main__":
    main()
