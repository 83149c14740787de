"""fnn.models.seq2seq: three-way gradient checks of Seq2seq and PeekySeq2seq, greedy generation against
step-by-step decoding, the book's evaluation rule, training with fit. (Their values against the
book's own classes: tests/test_book_reference.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import optim
from fnn.data.sequence import addition_problems, load_sequence
from fnn.gradient import gradient_check, max_error
from fnn.models import seq2seq as S
from fnn.step import make_evaluate
from fnn.train import fit
from tests.helpers import check_layer

# tiny programs: skip XLA:CPU's expensive passes (as tests/test_book_reference.py does)


def _batch(V=7, N=3, T_q=5, T_a=4, seed=1):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.randint(k1, (N, T_q), 0, V), jax.random.randint(k2, (N, T_a), 0, V)


@pytest.mark.parametrize("peeky", [False, True])
def test_three_way_gradient_check(peeky):
    model = S.model(7, 3, 4, peeky=peeky, dtype=jnp.float64)
    params, state = model.init(jax.random.key(0))
    xs, ts = _batch()
    f = jax.jit(lambda p: model.loss(p, state, xs, ts)[0])
    manual = jax.jit(lambda p: model.manual_grad(p, state, xs, ts)[1])  # gradient_check compiles both at once
    errors = gradient_check(manual, f, params)
    assert max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert max_error(errors["manual_vs_numerical"]) < 1e-5, errors
    loss, _, _ = model.manual_grad(params, state, xs, ts)
    assert loss == pytest.approx(float(f(params)), rel=1e-12)


def test_peek_layer_three_way():
    h = jax.random.normal(jax.random.key(0), (2, 3), jnp.float64)
    xs = jax.random.normal(jax.random.key(1), (2, 4, 5), jnp.float64)
    check_layer(S.peek, h, xs)
    y, _ = S.peek.forward(h, xs)
    np.testing.assert_array_equal(y[:, 2, :3], h)  # h in front, as the book's concatenate((hs, out))
    with pytest.raises(ValueError, match=r"peek.forward: h has shape \(3, 3\), expected \(2, H\)"):
        S.peek.forward(jnp.zeros((3, 3)), xs)


@pytest.mark.parametrize("nets", [S.SEQ2SEQ, S.PEEKY], ids=["Seq2seq", "PeekySeq2seq"])
def test_generation_equals_step_by_step_decoding(nets):
    """The scan's answers are the argmax of the teacher-forced decoder fed with them, and equal a
    Python loop that runs the decoder one step at a time (the book's Decoder.generate)."""
    params = S.init(jax.random.key(3), 9, 4, 6, peeky=nets is S.PEEKY, dtype=jnp.float64)
    params = jax.tree_util.tree_map(lambda w: w * 8, params)  # answers that vary
    xs, _ = _batch(V=9, N=5)
    ids, a = S.generate(params, xs, 2, 6, nets)
    assert a is None and ids.shape == (5, 6) and len(np.unique(np.asarray(ids))) > 2
    fed = jnp.concatenate([jnp.full((5, 1), 2, ids.dtype), ids], axis=1)
    scores, _ = S._forward(nets, params, xs, fed, fast=True)
    np.testing.assert_array_equal(jnp.argmax(scores, -1), ids)
    enc, _ = S._encode(nets, params, xs)
    dec, state = S._link(nets, params, enc)
    x = jnp.full((5,), 2, jnp.int32)
    for s in range(6):  # one decoder call a character, as the book's loop
        step_scores, _, state = S.runner.forward(nets.decoder, dec, x[:, None], state=state)
        x = jnp.argmax(step_scores[:, 0], -1)
        np.testing.assert_array_equal(x, ids[:, s])
        np.testing.assert_allclose(step_scores[:, 0], scores[:, s], rtol=1e-10, atol=1e-12)


def test_evaluate_is_the_books_exact_match():
    params = jax.tree_util.tree_map(lambda w: w * 8, S.init(jax.random.key(3), 9, 4, 6, dtype=jnp.float64))
    xs, _ = _batch(V=9, N=6)
    ids, _ = S.generate(params, xs, 2, 3)
    ts = jnp.concatenate([jnp.full((6, 1), 2, ids.dtype), ids], axis=1)
    ts = ts.at[1, 2].set((ts[1, 2] + 1) % 9).at[4, 3].set((ts[4, 3] + 1) % 9)  # one wrong character each
    loss, correct = S.evaluate(params, xs, ts)
    np.testing.assert_array_equal(correct, [1, 0, 1, 1, 0, 1])
    assert float(loss.mean()) == pytest.approx(float(S.loss(params, xs, ts)), rel=1e-12)
    result = make_evaluate(S.model(9, 4, 6, dtype=jnp.float64), batch_size=4)(params, {}, xs, ts)
    assert float(result["accuracy"]) == pytest.approx(4 / 6) and float(result["loss"]) == pytest.approx(
        float(loss.mean()), rel=1e-12)


def test_apply_is_the_greedy_answers_scores():
    params = S.init(jax.random.key(0), 9, 4, 6)
    xs, _ = _batch(V=9)
    scores, _ = S.model(9, 4, 6, start_id=2, answer_size=3).apply(params, {}, xs)
    np.testing.assert_array_equal(jnp.argmax(scores, -1), S.generate(params, xs, 2, 3)[0])
    with pytest.raises(ValueError, match="Seq2seq apply: start_id is None and answer_size is None"):
        S.model(9, 4, 6).apply(params, {}, xs)


def test_errors_name_the_argument():
    params = S.init(jax.random.key(0), 7, 3, 4)
    xs, ts = _batch()
    with pytest.raises(ValueError, match=r"Seq2seq: ts has shape \(3, 1\), expected \(3, T_a\) with T_a >= 2"):
        S.loss(params, xs, ts[:, :1])
    with pytest.raises(ValueError, match=r"Seq2seq: ts has shape \(2, 4\), expected \(3, T_a\)"):
        S.loss(params, xs, ts[:2])
    with pytest.raises(ValueError, match="Seq2seq: xs needs rank 2"):
        S.loss(params, xs[0], ts)
    with pytest.raises(ValueError, match="Seq2seq encoder layer 1 \\(TimeEmbedding\\).*holds the id 9"):
        S.loss(params, xs.at[0, 0].set(9), ts)
    with pytest.raises(ValueError, match="generate: sample_size is 0"):
        S.generate(params, xs, 0, 0)
    with pytest.raises(ValueError, match=r"generate: start_id has dtype float.* expected an integer id"):
        S.generate(params, xs, 0.5, 2)
    with pytest.raises(ValueError, match="from_book_params: got 9 arrays, expected the book's 10"):
        S.from_book_params([np.zeros(1)] * 9)


def test_reversed_input_is_the_books_slice(tmp_path):
    path = addition_problems(tmp_path / "add.txt", 200, seed=1)
    plain, rev = load_sequence(path), load_sequence(path, reverse=True)
    np.testing.assert_array_equal(rev.train[0], plain.train[0][:, ::-1])
    np.testing.assert_array_equal(rev.test[1], plain.test[1])


def test_fit_trains_and_evaluates_by_exact_match(tmp_path):
    """fit trains a seq2seq model on question ids -> answer ids; its accuracies are evaluate's."""
    (x, t), (xt, tt), char_to_id, _ = load_sequence(addition_problems(tmp_path / "a.txt", 55, max_digits=1),
                                                     reverse=True)  # every single-digit sum: 50 train, 5 test
    model = S.model(len(char_to_id), 8, 16, peeky=True)
    opt = optax.chain(optim.clip_by_global_norm(5.0), optim.adam(0.02))
    ts, history = fit(model, opt, ((x, t), (xt, tt)), key=jax.random.key(0), epochs=30, batch_size=10,
                      grad="manual", progress=False)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    for name, (xe, te) in (("train", (x, t)), ("test", (xt, tt))):
        _, correct = S.evaluate(ts.params, jnp.asarray(xe), jnp.asarray(te), S.PEEKY)
        assert history[f"{name}_acc"][-1] == pytest.approx(float(correct.mean()), abs=1e-6)
    assert history["train_acc"][-1] > 0.5  # learnt, not guessed (about 1 in 19 by chance)


def test_fit_both_gradient_paths_agree(tmp_path):
    (x, t), test, char_to_id, _ = load_sequence(addition_problems(tmp_path / "a.txt", 120, max_digits=2))
    model = S.model(len(char_to_id), 4, 6, peeky=True, dtype=jnp.float64)
    runs = [fit(model, optim.adam(0.01), ((x, t), test), key=jax.random.key(1), epochs=2, batch_size=16,
                grad=grad, progress=False)[0].params for grad in ("manual", "autodiff")]
    for a, b in zip(*map(jax.tree_util.tree_leaves, runs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_fit_refuses_float_questions(tmp_path):
    (x, t), test, char_to_id, _ = load_sequence(addition_problems(tmp_path / "a.txt", 50, max_digits=1))
    with pytest.raises(TypeError, match="fit: train x has dtype float32, expected integer ids"):
        fit(S.model(len(char_to_id), 4, 6), optim.adam(), ((x.astype(np.float32), t), test),
            key=jax.random.key(0), epochs=1, batch_size=8, progress=False)
