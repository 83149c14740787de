"""fnn.models.rnnlm: three-way gradient checks of the book's LMs, the stateful carry, the book's
pretrained Rnnlm.pkl (test perplexity 136.08 on PTB, skipped without FNN_DATA_DIR)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import lm
from fnn.gradient import gradient_check, max_error
from fnn.models import rnnlm

V, D, H, N, T = 11, 4, 4, 2, 5
MODELS = {
    "SimpleRnnlm": lambda: rnnlm.simple_rnnlm(V, D, H, dtype=jnp.float64),
    "Rnnlm-lstm": lambda: rnnlm.rnnlm(V, D, H, dtype=jnp.float64),
    "Rnnlm-gru": lambda: rnnlm.rnnlm(V, D, H, family="gru", dtype=jnp.float64),
    "BetterRnnlm": lambda: rnnlm.better_rnnlm(V, D, H, drop_rate=0.3, dtype=jnp.float64),
}


def _data(seed=0):
    xs = jax.random.randint(jax.random.key(seed), (N, T), 0, V)
    ts = jax.random.randint(jax.random.key(seed + 1), (N, T), 0, V)
    return xs, ts


def _nonzero_state(model, params, seed=5):
    s0 = lm.initial_state(model, params, N)
    return jax.tree_util.tree_map(
        lambda a: 0.5 * jax.random.normal(jax.random.key(seed), a.shape, a.dtype), s0)


@pytest.mark.parametrize("name", [n if n == "Rnnlm-lstm" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in MODELS])  # ~10 s each on 2 loaded cores (compiles)
def test_lm_three_way(name):
    """Hand BPTT vs jax.grad vs numerical, from a carried (nonzero) state, T = 5."""
    model = MODELS[name]()
    params, _ = model.init(jax.random.key(0))
    state = _nonzero_state(model, params)
    xs, ts = _data()
    key = jax.random.key(3)
    f = jax.jit(lambda p: model.loss(p, state, xs, ts, key=key)[0])
    manual = jax.jit(lambda p: model.manual_grad(p, state, xs, ts, key=key)[1])
    errors = gradient_check(manual, f, params)
    assert max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert max_error(errors["manual_vs_numerical"]) < 1e-5, errors
    loss_a, state_a = model.loss(params, state, xs, ts, key=key)
    loss_m, _, state_m = model.manual_grad(params, state, xs, ts, key=key)
    np.testing.assert_allclose(loss_a, loss_m, rtol=1e-12)
    for a, b in zip(jax.tree_util.tree_leaves(state_a), jax.tree_util.tree_leaves(state_m), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


CONFIGS = {"SimpleRnnlm": rnnlm.Config("rnn"), "Rnnlm-gru": rnnlm.Config("gru"),
           "BetterRnnlm": rnnlm.Config("lstm", num_layers=2, drop_rate=0.3, tied=True)}


@pytest.mark.parametrize("name", ["BetterRnnlm", pytest.param("SimpleRnnlm", marks=pytest.mark.slow),
                                  pytest.param("Rnnlm-gru", marks=pytest.mark.slow)])
def test_chunked_head_equals_unchunked_head_and_autodiff(name):
    """manual_grad's fused output head in chunks of 3 rows (N*T = 10: 4 chunks, 2 masked padding
    rows) gives the loss and gradients of TimeAffine + TimeSoftmaxWithLoss (head_rows=None) and of
    jax.grad, with ignored labels (-1) and, for BetterRnnlm, tied weights and dropout."""
    chunked, unchunked = (rnnlm.model(V, D, H, CONFIGS[name]._replace(head_rows=r), dtype=jnp.float64)
                          for r in (3, None))
    params, _ = chunked.init(jax.random.key(0))
    state = _nonzero_state(chunked, params)
    xs, ts = _data(2)
    ts = ts.at[0, 1:3].set(-1)
    key = jax.random.key(3)
    loss_c, grads_c, state_c = jax.jit(lambda p: chunked.manual_grad(p, state, xs, ts, key=key))(params)
    loss_u, grads_u, state_u = jax.jit(lambda p: unchunked.manual_grad(p, state, xs, ts, key=key))(params)
    loss_a, grads_a = jax.jit(jax.value_and_grad(lambda p: chunked.loss(p, state, xs, ts, key=key)[0]))(params)
    np.testing.assert_allclose(loss_c, loss_u, rtol=1e-13)
    np.testing.assert_allclose(loss_c, loss_a, rtol=1e-13)
    flat = jax.tree_util.tree_leaves_with_path
    for (path, c), u, a in zip(flat(grads_c), jax.tree_util.tree_leaves(grads_u),
                               jax.tree_util.tree_leaves(grads_a), strict=True):
        np.testing.assert_allclose(c, u, rtol=1e-11, atol=1e-15, err_msg=str(path))
        np.testing.assert_allclose(c, a, rtol=1e-9, atol=1e-14, err_msg=str(path))
    for a, b in zip(jax.tree_util.tree_leaves(state_c), jax.tree_util.tree_leaves(state_u), strict=True):
        np.testing.assert_array_equal(a, b)


def test_stateful_carry_continues_the_sequence():
    """Two stateful halves give the scores of the whole; stateless restarts from zeros."""
    model = MODELS["Rnnlm-lstm"]()
    params, state = model.init(jax.random.key(0))
    xs, _ = _data()
    whole, _ = model.apply(params, state, xs)
    first, mid = model.apply(params, state, xs[:, :2])
    second, _ = model.apply(params, mid, xs[:, 2:])
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, rtol=1e-12)
    stateless = rnnlm.model(V, D, H, rnnlm.Config("lstm", stateful=False), dtype=jnp.float64)
    again, s = stateless.apply(params, {}, xs[:, 2:])
    assert s == {}
    np.testing.assert_allclose(again, model.apply(params, {}, xs[:, 2:])[0], rtol=1e-12)


def test_better_rnnlm_ties_weights_and_eval_has_no_dropout():
    model = MODELS["BetterRnnlm"]()
    params, state = model.init(jax.random.key(0))
    assert set(params) == {"embed", "lstm1", "lstm2", "affine"} and set(params["affine"]) == {"b"}
    xs, _ = _data()
    a, _ = model.apply(params, state, xs, train=False)
    b, _ = model.apply(params, state, xs, train=False)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="key is None"):
        model.loss(params, state, xs, xs)


def test_from_book_params_layout():
    rng = np.random.default_rng(0)
    shapes = [(V, D), (D, 4 * H), (H, 4 * H), (4 * H,), (H, V), (V,)]
    arrays = [rng.standard_normal(s).astype(np.float16) for s in shapes]
    p = rnnlm.from_book_params(arrays)
    assert p["lstm"]["Wx"].dtype == jnp.float32
    np.testing.assert_array_equal(p["affine"]["W"], arrays[4].astype(np.float32))
    scores, _ = rnnlm.rnnlm(V, D, H).apply(p, {}, jnp.zeros((1, 3), jnp.int32))
    assert scores.shape == (1, 3, V)
    with pytest.raises(ValueError, match="got 5 arrays, expected 6"):
        rnnlm.from_book_params(arrays[:5])


def test_errors():
    model = MODELS["Rnnlm-lstm"]()
    params, state = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"rnnlm: xs needs rank 2 \(N, T\) word ids"):
        model.apply(params, state, jnp.zeros((N,), jnp.int32))
    with pytest.raises(ValueError, match=r"sequence length T >= 1"):
        model.apply(params, state, jnp.zeros((N, 0), jnp.int32))
    with pytest.raises(ValueError, match="weight tying needs wordvec_size == hidden_size"):
        rnnlm.better_rnnlm(V, 3, 4).init(jax.random.key(0))
    with pytest.raises(ValueError, match="family is 'elman'"):
        rnnlm.rnnlm(V, D, H, family="elman")
    with pytest.raises(ValueError, match="head_rows is 0, expected a positive integer or None"):
        rnnlm.model(V, D, H, rnnlm.Config(head_rows=0))


@pytest.mark.slow
def test_book_pretrained_rnnlm_test_perplexity(data_dir):
    """DLFS2 ch06/Rnnlm.pkl (float16, gates f, g, i, o) in fnn's LSTM LM, the book's
    eval_perplexity protocol (batch 10, T = 35, stateful from reset): 136.08 on PTB test."""
    from fnn.data.ptb import load_ptb
    from fnn.data.weights import load_book_weights

    corpus, _, _ = load_ptb("test", download=False)
    params = rnnlm.from_book_params(load_book_weights("Rnnlm.pkl", download=False))
    ppl = lm.perplexity(rnnlm.rnnlm(), params, corpus)
    assert abs(ppl - 136.08) < 0.1, ppl
