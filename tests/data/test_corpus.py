"""fnn.data.corpus: the generated Markov language's exact entropy rate, and DLFS2's batching."""

import numpy as np
import pytest

from fnn.data.corpus import (
    bptt_batches,
    eval_batches,
    generated_corpus,
    markov_language,
    sample,
    true_perplexity,
)


@pytest.mark.parametrize("order", [1, 2])
def test_stationary_and_entropy_rate_match_a_long_sample(order):
    lang = markov_language(vocab_size=6, order=order, concentration=0.5, seed=order)
    V, S = 6, 6 ** order
    nxt = (np.arange(S)[:, None] * V) % S + np.arange(V)[None, :]
    pushed = np.bincount(nxt.ravel(), weights=(lang.stationary[:, None] * lang.P).ravel(), minlength=S)
    np.testing.assert_allclose(pushed, lang.stationary, atol=1e-13)  # pi is stationary
    np.testing.assert_allclose(lang.P.sum(1), 1.0, rtol=1e-12)
    corpus = sample(lang, 200_000, seed=3)
    # the true model's empirical perplexity of a long sample converges to exp(entropy rate)
    assert abs(true_perplexity(lang, corpus) / lang.perplexity - 1) < 0.01
    assert 1 < lang.perplexity < V


def test_uniform_language_has_perplexity_vocab_size():
    lang = markov_language(vocab_size=5, concentration=1e9)  # every row ~ uniform
    np.testing.assert_allclose(lang.perplexity, 5.0, rtol=1e-6)


def test_generated_corpus_is_deterministic_and_named():
    c1, w2i, i2w, lang = generated_corpus(1000, vocab_size=7, seed=4)
    c2, *_ = generated_corpus(1000, vocab_size=7, seed=4)
    np.testing.assert_array_equal(c1, c2)
    assert c1.dtype == np.int32 and c1.shape == (1000,) and c1.max() < 7
    assert i2w[3] == "w3" and w2i["w3"] == 3


def _book_get_batch(x, t, batch_size, time_size, time_idx):
    """DLFS2 RnnlmTrainer.get_batch, written out as the book loops (reference)."""
    bx = np.empty((batch_size, time_size), int)
    bt = np.empty((batch_size, time_size), int)
    jump = len(x) // batch_size
    for time in range(time_size):
        for i in range(batch_size):
            bx[i, time] = x[(i * jump + time_idx) % len(x)]
            bt[i, time] = t[(i * jump + time_idx) % len(x)]
        time_idx += 1
    return bx, bt, time_idx


def test_bptt_batches_equal_the_books_trainer_across_epochs():
    corpus = np.arange(103) * 7 % 101
    B, T = 4, 5
    xs, ts, nxt = bptt_batches(corpus, B, T)
    xs2, ts2, _ = bptt_batches(corpus, B, T, time_idx=nxt)  # the second epoch continues
    assert xs.shape == (102 // (B * T), B, T)
    time_idx = 0
    for x_k, t_k in [*zip(xs, ts, strict=True), *zip(xs2, ts2, strict=True)]:
        bx, bt, time_idx = _book_get_batch(corpus[:-1], corpus[1:], B, T, time_idx)
        np.testing.assert_array_equal(x_k, bx)
        np.testing.assert_array_equal(t_k, bt)
    assert nxt == len(xs) * T


def test_eval_batches_equal_the_books_eval_perplexity():
    corpus = np.arange(97) * 5 % 89
    B, T = 3, 4
    xs, ts = eval_batches(corpus, B, T)
    n, jump = len(corpus), (len(corpus) - 1) // B
    assert xs.shape == ((n - 1) // (B * T), B, T)
    for k in range(xs.shape[0]):
        for i in range(B):
            for t in range(T):
                p = k * T + i * jump + t
                assert xs[k, i, t] == corpus[p % n] and ts[k, i, t] == corpus[(p + 1) % n]


def test_errors():
    with pytest.raises(ValueError, match=r"bptt_batches: the corpus has 10 words, expected at least"):
        bptt_batches(np.arange(10), 4, 5)
    with pytest.raises(ValueError, match=r"bptt_batches: time_size is 0"):
        bptt_batches(np.arange(100), 4, 0)
    with pytest.raises(ValueError, match=r"markov_language: order is 0"):
        markov_language(order=0)
