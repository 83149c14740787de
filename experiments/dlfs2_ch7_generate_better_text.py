"""Generate text with the trained BetterRnnlm, from a word and a prompt (DLFS2 §7.1.3, ch07/generate_better_text.py).

The book trains ``BetterRnnlm`` (ch06/train_better_rnnlm.py), saves its parameters, and in ch07
loads them to write 100 words starting from "you", then, after resetting the state, reads the
prompt "the meaning of life is" and continues it, never producing the skip words ``N``, ``<unk>``
and ``$``; ``<eos>`` is shown as a line break. Here the parameters are the ``params/`` folder that
``fnn run dlfs2_ch6_better_rnnlm`` writes (an `fnn.checkpoint` with the model's settings; another
folder with ``--params``), and the text comes from `fnn.lm.generate` (prompt and skip ids, one
`lax.scan`). Full mode also scores the model on PTB's test set (the book's ``eval_perplexity``).

Quick mode (``--quick``, no PTB): a small BetterRnnlm (D = H = 32, dropout 0.2) trained for a few
seconds on the generated order-2 Markov language, saved and loaded back through the same
checkpoint, generates from a word and from a three-word prompt while skipping the language's
rarest word. Because the language is known, the text can be checked: the skipped word never
appears, and the next-word frequencies of 2,000 generated words are compared with the language's
(total variation distance, beside the same distance for 2,000 words drawn from the language
itself, which is what sampling noise alone gives).

Writes ``generated.txt``, ``generate_better_text.png`` (full: the two texts; quick: next-word
frequencies of the generated text against the language's) and ``result.json``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

from fnn import lm, optim
from fnn.models import rnnlm
from fnn_experiments import _common as ex

NAME = "dlfs2_ch7_generate_better_text"
WRITER = "dlfs2_ch6_better_rnnlm"
OPTIONS = {  # this experiment's own options, added to every experiment's (fnn.cli.parser)
    "--params": {"type": "path", "help": "full mode: the trained model's folder (default "
                                         "results/dlfs2_ch6_better_rnnlm/params, written by that experiment)"},
    "--start": {"default": "you", "help": "full mode: the first word (the book's 'you')"},
    "--prompt": {"default": "the meaning of life is", "help": "full mode: the prompt continued after a reset"},
    "--length": {"type": "count", "default": 100, "help": "words to generate after the start word or the prompt"},
}
SKIP_WORDS = ["N", "<unk>", "$"]
QUICK = {"vocab_size": 10, "order": 2, "concentration": 0.3, "corpus_words": 20_000, "wordvec_size": 32,
         "hidden_size": 32, "drop_rate": 0.2, "epochs": 4, "batch_size": 20, "time_size": 10, "lr": 0.01,
         "prompt_words": 3, "sample_words": 2000}


def LESSON(result: dict) -> None:
    """What generation must show on the generated language: skipped words never come out, and the
    text follows the language about as closely as the language's own samples do."""
    m = result["metrics"]
    assert m["skipped_words_generated"] == 0, f"a skip word was generated: {m}"
    assert m["next_word_tv_distance"] < m["next_word_tv_distance_of_a_true_sample"] + 0.1, \
        f"the generated text does not follow the language: {m}"


def to_text(ids, id_to_word) -> str:
    """Word ids as the book prints them: words joined by spaces, ``<eos>`` as the end of a line."""
    return " ".join(id_to_word[int(i)] for i in ids).replace(" <eos>", ".\n")


def main(argv=None) -> dict:
    p = ex.parser(NAME, __doc__, OPTIONS)
    args = p.parse_args(argv)
    out = ex.output_dir(args, NAME)
    key = jax.random.key(args.seed)
    with ex.Timer() as timer:
        if args.quick:
            texts, metrics, config, fig = _quick(args, out, key)
        else:
            texts, metrics, config, fig = _full(args, key)
    ex.save_figure(fig, out / "generate_better_text.png")
    (out / "generated.txt").write_text("".join(f"== {n}\n{t}\n\n" for n, t in texts.items()))
    path = ex.save_result(out, NAME, args, config=config, metrics=metrics, seconds=timer.seconds, texts=texts,
                          book={"test_perplexity": 75},
                          book_ref={"section": "DLFS2 §7.1.3", "script": "ch07/generate_better_text.py",
                                    "approx": ["test_perplexity"], "quick_differs": True,
                                    "note": "the test perplexity of the model ch07 loads: BetterRnnlm after "
                                            "ch06/train_better_rnnlm.py's 40 epochs (D = H = 650, DLFS2 §6.5.4); "
                                            "fnn's is the model dlfs2_ch6_better_rnnlm trained"})
    ex.report([*(f"{k}: {v}" for k, v in metrics.items()), *(f"--- {n}\n{t}" for n, t in texts.items()),
               f"wrote {out} ({path.name})"])
    return {"metrics": metrics, "texts": texts}


def _full(args, key):
    from fnn.data.ptb import load_ptb

    folder = args.params if args.params is not None else Path("results") / WRITER / "params"
    model, params, settings = ex.load_lm(folder, NAME, WRITER)
    _, word_to_id, id_to_word = load_ptb("train")
    if settings["vocab_size"] != len(word_to_id):
        raise SystemExit(f"{NAME}: {folder} holds a model of {settings['vocab_size']} words, expected PTB's "
                         f"{len(word_to_id)} (was it trained with --quick?)")
    words = {}
    for option, text in (("--start", args.start), ("--prompt", args.prompt)):
        unknown = [w for w in text.split() if w not in word_to_id]
        if unknown or not text.split():
            raise SystemExit(f"{NAME}: {option} {text!r}: {unknown or 'no words'}, expected words of PTB's "
                             f"vocabulary (lower case; numbers are N)")
        words[option] = [word_to_id[w] for w in text.split()]
    skip = [word_to_id[w] for w in SKIP_WORDS]
    texts, skipped = {}, 0
    for (option, ids), k in zip(words.items(), jax.random.split(key, 2), strict=True):
        # each from the reset state, as the book's model.reset_state() before its prompt
        generated = lm.generate(model, params, ids, k, sample_size=args.length, skip_ids=skip)
        texts[f"{option} {args.start if option == '--start' else args.prompt!r}"] = to_text(generated, id_to_word)
        skipped += int(np.isin(generated[len(ids):], skip).sum())  # what the model wrote, not the user's words
    metrics = {"test_perplexity": lm.perplexity(model, params, load_ptb("test")[0]),
               "skipped_words_generated": skipped}
    config = {"params": str(folder), **settings, "start": args.start, "prompt": args.prompt,
              "length": args.length, "skip_words": SKIP_WORDS}
    bodies = ["\n".join(textwrap.fill(line.strip(), 88) for line in text.splitlines()) for text in texts.values()]
    heights = [body.count("\n") + 3 for body in bodies]
    fig, axes = plt.subplots(2, 1, figsize=(9, 0.19 * sum(heights) + 0.8), height_ratios=heights,
                             layout="constrained")
    for ax, name, body in zip(axes, texts, bodies, strict=True):
        ax.axis("off")
        ax.set_title(f"from {name}", loc="left", fontsize=10)
        ax.text(0, 1, body, va="top", family="monospace", fontsize=8.5, transform=ax.transAxes)
    fig.suptitle(f"BetterRnnlm (D = H = {settings['hidden_size']}) writes PTB-like text; test perplexity "
                 f"{metrics['test_perplexity']:.1f} (DLFS2 §7.1.3; skip words {' '.join(SKIP_WORDS)})")
    return texts, metrics, config, fig


def _quick(args, out, key):
    from fnn.data.corpus import generated_corpus, sample

    q = QUICK
    corpus, _, id_to_word, lang = generated_corpus(q["corpus_words"], vocab_size=q["vocab_size"], order=q["order"],
                                                  concentration=q["concentration"], seed=args.seed)
    V = len(id_to_word)
    model = rnnlm.better_rnnlm(V, q["wordvec_size"], q["hidden_size"], q["drop_rate"])
    k_fit, k_start, k_prompt = jax.random.split(key, 3)
    ts, _ = lm.fit_lm(model, optax.chain(optim.clip_by_global_norm(0.25), optim.adam(q["lr"])), corpus,
                      key=k_fit, epochs=q["epochs"], batch_size=q["batch_size"], time_size=q["time_size"],
                      eval_interval=100, progress=args.progress, desc=NAME)
    # the same round trip as full mode: saved as dlfs2_ch6_better_rnnlm saves it, loaded back
    ex.save_lm(out / "params", ts.params, model="better_rnnlm", epoch=q["epochs"], vocab_size=V,
               wordvec_size=q["wordvec_size"], hidden_size=q["hidden_size"], drop_rate=q["drop_rate"])
    model, params, settings = ex.load_lm(out / "params", NAME, WRITER)
    skip = [int(np.argmin(np.bincount(corpus, minlength=V)))]  # the rarest word
    fresh = sample(lang, q["prompt_words"] + 1, seed=args.seed + 400)
    start, prompt = [int(fresh[0])], [int(w) for w in fresh[1:]]
    from_start = lm.generate(model, params, start, k_start, sample_size=args.length, skip_ids=skip)
    from_prompt = lm.generate(model, params, prompt, k_prompt, sample_size=q["sample_words"], skip_ids=skip)
    texts = {f"--start {to_text(start, id_to_word)}": to_text(from_start, id_to_word),
             f"--prompt {to_text(prompt, id_to_word)!r}": to_text(from_prompt[:len(prompt) - 1 + args.length],
                                                                 id_to_word)}
    generated = np.asarray(from_prompt)[len(prompt) - 1:]  # the prompt's last word, then what the model wrote
    metrics = {"skipped_words_generated": int(np.isin(np.concatenate([from_start[1:], generated[1:]]), skip).sum()),
               "next_word_tv_distance": ex.next_word_tv(generated, lang, banned=skip),
               "next_word_tv_distance_of_a_true_sample": ex.next_word_tv(
                   sample(lang, len(generated), seed=args.seed + 300), lang),
               "test_perplexity": lm.perplexity(model, params, sample(lang, 5001, seed=args.seed + 200)),
               "true_perplexity": lang.perplexity}
    config = {**q, **settings, "skip_words": [id_to_word[w] for w in skip], "data": "generated language"}
    fig = ex.plot_next_words(
        generated, lang, id_to_word,
        f"BetterRnnlm's text after the prompt {to_text(prompt, id_to_word)!r}, never writing "
        f"{id_to_word[skip[0]]!r} (DLFS2 §7.1.3)\ntotal variation distance from the language without it "
        f"{metrics['next_word_tv_distance']:.3f} (the language's own sample: "
        f"{metrics['next_word_tv_distance_of_a_true_sample']:.3f})", banned=skip)
    return texts, metrics, config, fig


if __name__ == "__main__":
    main()
