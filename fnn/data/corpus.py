"""A generated text corpus with an exactly known perplexity, and DLFS2's truncated-BPTT batching.

No text corpus can ship with fnn, so tests and quick modes use a small probabilistic language: a
Markov chain of order k over V words, ``P(w_t | w_{t-k}, ..., w_{t-1})``, with transition rows drawn
from a Dirichlet distribution (smaller `concentration` = more predictable language). Its entropy
rate, the best per-word cross-entropy any language model can reach, is exact:

    H = sum_s pi(s) * ( - sum_w P(w | s) log P(w | s) )     (nats per word; pi stationary on contexts)
    true perplexity = exp(H)                                  (DLFS2 §5.5.3: perplexity = exp(loss))

A model that learns the chain reaches exp(H) on a long sample; one that ignores context stays at
the unigram perplexity. With ``order=2`` an RNN has to remember two words.

Batching (DLFS2 §5.5.3, ``common/trainer.py`` ``RnnlmTrainer.get_batch`` and ``common/util.py``
``eval_perplexity``): `batch_size` parallel read heads start ``jump = len // batch_size`` words
apart and advance `time_size` words per mini-batch, wrapping around the corpus.
"""

from __future__ import annotations

import bisect
import itertools
from typing import NamedTuple

import numpy as np

from fnn._checks import check_int, check_positive_int

__all__ = [
    "bptt_batches", "eval_batches", "generated_corpus", "markov_language", "MarkovLanguage", "sample",
    "true_perplexity",
]


class MarkovLanguage(NamedTuple):
    """A stationary Markov chain of order `order` over `vocab_size` words."""

    P: np.ndarray            # (V**order, V) next-word probabilities; row s = context index
    order: int               # k, the number of previous words the next one depends on
    stationary: np.ndarray   # (V**order,) the stationary distribution over contexts
    entropy: float           # the entropy rate H, nats per word
    perplexity: float        # exp(H), the best perplexity any model can reach

    @property
    def vocab_size(self) -> int:
        return self.P.shape[1]


def markov_language(vocab_size: int = 10, order: int = 1, concentration: float = 0.3,
                    seed: int = 0) -> MarkovLanguage:
    """A random order-k Markov language and its exact entropy rate (see the module docstring).

    The stationary distribution over the V**k contexts is the fixed point of the context chain
    (s = (w1..wk) -> (w2..wk, w)), found by power iteration to float64 precision.
    """
    vocab_size = check_int("markov_language", "vocab_size", vocab_size, 2)
    order = check_int("markov_language", "order", order, 1)
    if not concentration > 0:
        raise ValueError(f"markov_language: concentration is {concentration!r}, expected > 0")
    V, S = vocab_size, vocab_size ** order
    if S > 1_000_000:
        raise ValueError(f"markov_language: vocab_size**order is {S}, expected at most 1e6 contexts")
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(V, concentration), size=S)
    P = np.maximum(P, 1e-12)
    P /= P.sum(1, keepdims=True)  # every transition possible: the chain is irreducible, aperiodic
    nxt = (np.arange(S)[:, None] * V) % S + np.arange(V)[None, :]  # (S, V) next context
    pi = np.full(S, 1.0 / S)
    for _ in range(100_000):
        new = np.bincount(nxt.reshape(-1), weights=(pi[:, None] * P).reshape(-1), minlength=S)
        if np.max(np.abs(new - pi)) < 1e-15:
            pi = new
            break
        pi = new
    pi /= pi.sum()
    H = float(np.sum(pi * -np.sum(P * np.log(P), axis=1)))
    return MarkovLanguage(P, order, pi, H, float(np.exp(H)))


def sample(lang: MarkovLanguage, length: int, seed: int = 0) -> np.ndarray:
    """`length` words (int32) of the language, starting from its stationary distribution."""
    length = check_int("sample", "length", length, lang.order + 1,
                       expected=f"an integer > order ({lang.order})")
    rng = np.random.default_rng(seed)
    V, k = lang.vocab_size, lang.order
    s = int(rng.choice(len(lang.stationary), p=lang.stationary))
    words = [(s // V ** (k - 1 - j)) % V for j in range(k)]
    cdf = [list(itertools.accumulate(row)) for row in lang.P.tolist()]
    S = V ** k
    for u in rng.random(length - k).tolist():
        row = cdf[s]
        w = min(bisect.bisect_right(row, u * row[-1]), V - 1)
        words.append(w)
        s = (s * V) % S + w
    return np.asarray(words, np.int32)


def true_perplexity(lang: MarkovLanguage, corpus: np.ndarray) -> float:
    """exp of the true model's mean negative log-likelihood of `corpus` (words after the first k)."""
    corpus = np.asarray(corpus)
    k, V = lang.order, lang.vocab_size
    ctx = np.zeros(len(corpus) - k, np.int64)
    for j in range(k):
        ctx = ctx * V + corpus[j:len(corpus) - k + j]
    return float(np.exp(-np.mean(np.log(lang.P[ctx, corpus[k:]]))))


def generated_corpus(length: int = 20_000, *, vocab_size: int = 10, order: int = 1,
                     concentration: float = 0.3, seed: int = 0):
    """``(corpus, word_to_id, id_to_word, lang)`` like `fnn.data.ptb.load_ptb`, words ``w0, w1, ...``."""
    lang = markov_language(vocab_size, order, concentration, seed)
    corpus = sample(lang, length, seed + 1)
    id_to_word = {i: f"w{i}" for i in range(vocab_size)}
    return corpus, {w: i for i, w in id_to_word.items()}, id_to_word, lang


def bptt_batches(corpus, batch_size: int, time_size: int, *, time_idx: int = 0,
                 num_batches: int | None = None):
    """Truncated-BPTT mini-batches exactly as DLFS2's ``RnnlmTrainer.fit`` draws them.

    With ``x = corpus[:-1]``, ``t = corpus[1:]``, ``L = len(x)``, ``jump = L // batch_size``, batch k
    reads, for row i and step j, position ``(i * jump + time_idx + k * time_size + j) % L``.
    `num_batches` defaults to the book's ``L // (batch_size * time_size)`` (one epoch).

    Returns ``(xs, ts, next_time_idx)`` with xs, ts int32 (num_batches, batch_size, time_size);
    pass `next_time_idx` back to continue where the book's trainer continues (it keeps its
    ``time_idx`` across the epochs of one ``fit`` call).
    """
    corpus = np.asarray(corpus)
    if corpus.ndim != 1 or not np.issubdtype(corpus.dtype, np.integer):
        raise ValueError(f"bptt_batches: corpus has shape {corpus.shape} and dtype {corpus.dtype}, "
                         f"expected a 1-d array of integer word ids")
    batch_size = check_positive_int("bptt_batches", "batch_size", batch_size)
    time_size = check_positive_int("bptt_batches", "time_size", time_size)
    L = len(corpus) - 1
    nb = L // (batch_size * time_size) if num_batches is None else num_batches
    if nb < 1:
        raise ValueError(f"bptt_batches: the corpus has {len(corpus)} words, expected at least "
                         f"batch_size * time_size + 1 = {batch_size * time_size + 1}")
    jump = L // batch_size
    pos = (np.arange(batch_size)[None, :, None] * jump + time_idx
           + np.arange(nb)[:, None, None] * time_size + np.arange(time_size)[None, None, :]) % L
    return (corpus[:-1][pos].astype(np.int32), corpus[1:][pos].astype(np.int32),
            time_idx + nb * time_size)


def eval_batches(corpus, batch_size: int = 10, time_size: int = 35):
    """The mini-batches of DLFS2's ``eval_perplexity`` (``common/util.py``).

    ``n = len(corpus)``, ``jump = (n - 1) // batch_size``, ``(n - 1) // (batch_size * time_size)``
    batches; batch k, row i, step j reads ``p = k * time_size + i * jump + j``:
    ``xs = corpus[p % n]``, ``ts = corpus[(p + 1) % n]``. Returns xs, ts int32 (nb, B, T).
    """
    corpus = np.asarray(corpus)
    n = len(corpus)
    nb = (n - 1) // (batch_size * time_size)
    if corpus.ndim != 1 or nb < 1:
        raise ValueError(f"eval_batches: corpus has shape {corpus.shape}, expected a 1-d array of "
                         f"at least batch_size * time_size + 1 = {batch_size * time_size + 1} ids")
    jump = (n - 1) // batch_size
    pos = (np.arange(nb)[:, None, None] * time_size + np.arange(batch_size)[None, :, None] * jump
           + np.arange(time_size)[None, None, :])
    return corpus[pos % n].astype(np.int32), corpus[(pos + 1) % n].astype(np.int32)
