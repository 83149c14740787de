"""fnn.models.attention_seq2seq: three-way gradient check of AttentionSeq2seq, greedy generation (with
its attention weights) against step-by-step decoding, the book's trained weights answering 5000 of
5000 of date.txt's test questions. (Its values against the book's own class:
tests/test_book_reference.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.gradient import gradient_check, max_error
from fnn.layers import attention as A
from fnn.models import attention_seq2seq as AS
from fnn.models import runner
from fnn.models import seq2seq as S
from tests.helpers import check_layer

# tiny programs: skip XLA:CPU's expensive passes (as tests/test_book_reference.py does)


def _batch(V=7, N=3, T_q=5, T_a=4, seed=1):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.randint(k1, (N, T_q), 0, V), jax.random.randint(k2, (N, T_a), 0, V)


def test_three_way_gradient_check():
    model = AS.model(7, 3, 4, dtype=jnp.float64)
    params, state = model.init(jax.random.key(0))
    assert params["decoder"]["affine"]["W"].shape == (8, 7)  # concat(c, dec_hs): 2H inputs
    xs, ts = _batch()
    f = jax.jit(lambda p: model.loss(p, state, xs, ts)[0])
    manual = jax.jit(lambda p: model.manual_grad(p, state, xs, ts)[1])  # gradient_check compiles both at once
    errors = gradient_check(manual, f, params)
    assert max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert max_error(errors["manual_vs_numerical"]) < 1e-5, errors


def test_attend_layer_three_way():
    hs_enc = jax.random.normal(jax.random.key(0), (2, 5, 3), jnp.float64)
    hs_dec = jax.random.normal(jax.random.key(1), (2, 4, 3), jnp.float64)
    check_layer(AS.attend, hs_enc, hs_dec)
    y, cache = AS.attend.forward(hs_enc, hs_dec)
    c, _ = A.time_attention.forward({}, hs_enc, hs_dec)
    np.testing.assert_array_equal(y, jnp.concatenate([c, hs_dec], axis=2))  # the book's order: (c, dec_hs)
    assert cache.a.shape == (2, 4, 5)


def test_generation_and_its_weights_equal_step_by_step_decoding():
    params = jax.tree_util.tree_map(lambda w: w * 8, AS.init(jax.random.key(3), 9, 4, 6, dtype=jnp.float64))
    xs, _ = _batch(V=9, N=5, T_q=7)
    ids, a = AS.generate(params, xs, 2, 6)
    assert ids.shape == (5, 6) and a.shape == (5, 6, 7) and len(np.unique(np.asarray(ids))) > 2
    np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-12)
    fed = jnp.concatenate([jnp.full((5, 1), 2, ids.dtype), ids], axis=1)
    scores, (_, _, _, caches) = S._forward(AS.ATTENTION, params, xs, fed, fast=False)
    np.testing.assert_array_equal(jnp.argmax(scores, -1), ids)
    np.testing.assert_allclose(a, caches[2].a, rtol=1e-10, atol=1e-14)  # teacher forcing's weights
    enc, _ = S._encode(AS.ATTENTION, params, xs)
    dec, state = S._link(AS.ATTENTION, params, enc)
    x = jnp.full((5,), 2, jnp.int32)
    for s in range(6):  # the book's AttentionDecoder.generate: one character a call
        step_scores, step_caches, state = runner.forward(AS.ATTENTION.decoder, dec, x[:, None], state=state)
        x = jnp.argmax(step_scores[:, 0], -1)
        np.testing.assert_array_equal(x, ids[:, s])
        np.testing.assert_allclose(step_caches[2].a[:, 0], a[:, s], rtol=1e-10, atol=1e-14)


def test_errors_name_the_layer():
    params = AS.init(jax.random.key(0), 7, 3, 4)
    xs, ts = _batch()
    bad = {**params, "decoder": {**params["decoder"], "affine": {"W": jnp.zeros((4, 7)), "b": jnp.zeros(7)}}}
    with pytest.raises(ValueError, match=r"AttentionSeq2seq decoder layer 4 \(TimeAffine\)"):
        AS.loss(bad, xs, ts)


@pytest.mark.data
def test_the_books_weights_answer_every_test_question(data_dir):
    """DLFS2 ch08/AttentionSeq2seq.pkl in fnn's model: eval_seq2seq (reversed input, greedy, exact
    match) on date.txt's test split, as ch08/train.py evaluates; the book's code answers 5000 of 5000."""
    from fnn.data.sequence import load_sequence
    from fnn.data.weights import load_book_weights

    _, (x_test, t_test), char_to_id, _ = load_sequence("date", reverse=True, download=False)
    params = S.from_book_params(load_book_weights("AttentionSeq2seq.pkl", download=False))  # float32
    assert params["decoder"]["embed"]["W"].shape == (len(char_to_id), 16) and x_test.shape == (5000, 29)
    _, correct = jax.jit(AS.evaluate)(params, jnp.asarray(x_test), jnp.asarray(t_test))
    assert int(correct.sum()) == 5000
