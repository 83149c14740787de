"""fnn.models.runner: forward collecting caches, backward in reverse = jax.grad = numerical gradient,
for flat and nested params, model state (batch norm, recurrent carries), dropout keys, shared
params, fast forwards, and errors that name the layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.gradient import gradient_check, max_error
from fnn.layers import core as L
from fnn.layers import recurrent as R
from fnn.layers import time as TL
from fnn.layers.dropout import dropout
from fnn.layers.normalization import batch_norm
from fnn.models import runner
from fnn.models.runner import Node
from tests.helpers import check_layer

f64 = jnp.float64


def _normal(seed, shape):
    return jax.random.normal(jax.random.key(seed), shape, f64)


# An MLP with every kind of node: flat params, batch norm state, dropout keys
MLP = (Node("Affine1", L.affine, {"W": "W1", "b": "b1"}),
       Node("BatchNorm1", batch_norm, {"gamma": "gamma1", "beta": "beta1"}, {"momentum": 0.9, "eps": 1e-6},
            state={"running_mean": "mean1", "running_var": "var1"}, train=True),
       Node("Relu1", L.relu),
       Node("Dropout1", dropout, options={"drop_rate": 0.3}, rng=True, train=True),
       Node("Affine2", L.affine, {"W": "W2", "b": "b2"}),
       Node("Tanh2", L.tanh),
       Node("Dropout2", dropout, options={"drop_rate": 0.3}, rng=True, train=True),
       Node("Affine3", L.affine, {"W": "W3", "b": "b3"}))


def _mlp_setup():
    params = {"W1": _normal(0, (5, 4)), "b1": _normal(1, (4,)), "gamma1": 1 + 0.3 * _normal(2, (4,)),
              "beta1": _normal(3, (4,)), "W2": _normal(4, (4, 6)), "b2": _normal(5, (6,)),
              "W3": _normal(6, (6, 3)), "b3": _normal(7, (3,))}
    state = {"mean1": jnp.zeros(4, f64), "var1": jnp.ones(4, f64)}
    x, t = _normal(8, (7, 5)), jnp.array([0, 2, 1, 1, 0, 2, 2])
    return params, state, x, t


def _loss(net, params, state, x, t, key):
    scores, caches, new_state = runner.forward(net, params, x, state=state, train=True, key=key)
    return L.softmax_with_loss.forward({}, scores, t)[0], (caches, new_state)


def _manual(net, params, state, x, t, key):
    scores, caches, _ = runner.forward(net, params, x, state=state, train=True, key=key)
    _, cache = L.softmax_with_loss.forward({}, scores, t)
    _, dscores = L.softmax_with_loss.backward({}, cache, 1.0)
    return runner.backward(net, params, caches, dscores)


def test_backward_is_the_gradient_of_forward_three_ways():
    params, state, x, t = _mlp_setup()
    key = jax.random.key(9)
    errors = gradient_check(jax.jit(lambda p: _manual(MLP, p, state, x, t, key)[0]),
                            jax.jit(lambda p: _loss(MLP, p, state, x, t, key)[0]), params)
    for e in errors.values():  # b1 is cancelled by the batch norm: its gradient is rounding noise
        del e["b1"]
    assert max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert max_error(errors["manual_vs_numerical"]) < 1e-5, errors
    grads, dx, dstate = _manual(MLP, params, state, x, t, key)
    assert list(grads) == list(params) and dstate == {}
    np.testing.assert_allclose(dx, jax.grad(lambda x: _loss(MLP, params, state, x, t, key)[0])(x),
                               rtol=1e-9, atol=1e-13)


def test_state_and_keys():
    params, state, x, t = _mlp_setup()
    key = jax.random.key(9)
    _, caches, new_state = runner.forward(MLP, params, x, state={**state, "other": 1}, train=True, key=key)
    a1 = x @ params["W1"] + params["b1"][None, :]
    np.testing.assert_allclose(new_state["mean1"], 0.1 * a1.mean(0), rtol=1e-12)
    np.testing.assert_allclose(new_state["var1"], 0.9 + 0.1 * a1.var(0), rtol=1e-12)
    assert new_state["other"] == 1 and np.all(state["mean1"] == 0)  # copied, nothing mutated
    # the dropout nodes draw from split(key, 2), in order
    k1, k2 = jax.random.split(key, 2)
    keep = jax.random.bernoulli(k2, 0.7, (7, 6)).astype(f64)
    np.testing.assert_array_equal(caches[6], keep)
    assert not np.array_equal(caches[3], jax.random.bernoulli(key, 0.7, (7, 4)).astype(f64))
    np.testing.assert_array_equal(caches[3], jax.random.bernoulli(k1, 0.7, (7, 4)).astype(f64))
    # evaluation: running statistics, no key needed, the state handed back unchanged
    _, _, same = runner.forward(MLP, params, x, state=state)
    assert all(same[k] is state[k] for k in state)


def _seq2seq_setup():
    V, D, H, N = 7, 3, 4, 2
    def rnn(seed, d):
        return {"Wx": _normal(seed, (d, 4 * H)), "Wh": _normal(seed + 1, (H, 4 * H)),
                "b": _normal(seed + 2, (4 * H,))}
    params = {"encoder": {"embed": {"W": _normal(0, (V, D))}, "lstm": rnn(1, D)},
              "decoder": {"embed": {"W": _normal(5, (V, D))}, "lstm": rnn(6, D),
                          "affine": {"W": _normal(10, (H, V)), "b": _normal(11, (V,))}}}
    xs = jax.random.randint(jax.random.key(12), (N, 5), 0, V)
    ts = jax.random.randint(jax.random.key(13), (N, 4), 0, V)
    return params, xs, ts


ENCODER = (Node("embed", TL.time_embedding, "embed"),
           Node("lstm", R.time_lstm, "lstm", carry=True),
           Node("last", runner.last_step))
DECODER = (Node("embed", TL.time_embedding, "embed"),
           Node("lstm", R.time_lstm, "lstm", state="lstm", carry=True),
           Node("affine", TL.time_affine, "affine"))


def _seq2seq_loss(params, xs, ts):
    h, _, enc_state = runner.forward(ENCODER, params["encoder"], xs)
    scores, _, dec_state = runner.forward(DECODER, params["decoder"], ts[:, :-1],
                                          state={"lstm": (h, jnp.zeros_like(h))})
    assert enc_state == {} and set(dec_state) == {"lstm"}
    return TL.time_softmax_with_loss.forward({}, scores, ts[:, 1:])[0]


def _seq2seq_manual(params, xs, ts):
    h, enc_caches, _ = runner.forward(ENCODER, params["encoder"], xs)
    scores, dec_caches, _ = runner.forward(DECODER, params["decoder"], ts[:, :-1],
                                           state={"lstm": (h, jnp.zeros_like(h))})
    _, cache = TL.time_softmax_with_loss.forward({}, scores, ts[:, 1:])
    _, dscores = TL.time_softmax_with_loss.backward({}, cache, 1.0)
    dec_grads, dx, dstate = runner.backward(DECODER, params["decoder"], dec_caches, dscores)
    assert dx is None  # the embedding has no dx
    enc_grads, _, _ = runner.backward(ENCODER, params["encoder"], enc_caches, dstate["lstm"][0])
    return {"encoder": enc_grads, "decoder": dec_grads}


def test_encoder_decoder_with_a_carry_passed_between_them():
    """The module docstring's seq2seq (DLFS2 §7.3): nested params, the decoder starts from the
    encoder's last h, and the gradient w.r.t. that state flows back into the encoder."""
    params, xs, ts = _seq2seq_setup()
    errors = gradient_check(jax.jit(lambda p: _seq2seq_manual(p, xs, ts)),
                            jax.jit(lambda p: _seq2seq_loss(p, xs, ts)), params)
    assert max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert max_error(errors["manual_vs_numerical"]) < 1e-5, errors


def test_a_stateful_carry_starts_from_the_state_and_returns_the_last_one():
    params, xs, _ = _seq2seq_setup()
    net = (Node("embed", TL.time_embedding, "embed"), Node("lstm", R.time_lstm, "lstm", state="lstm", carry=True))
    p = params["encoder"]
    hs, _, s1 = runner.forward(net, p, xs)              # no state yet: zeros
    (want, last), _ = R.time_lstm.forward(p["lstm"], p["embed"]["W"][xs])
    np.testing.assert_array_equal(hs, want)
    np.testing.assert_array_equal(s1["lstm"][0], last[0])
    hs2, _, _ = runner.forward(net, p, xs, state=s1)    # continues from s1
    (want2, _), _ = R.time_lstm.forward(p["lstm"], p["embed"]["W"][xs], s1["lstm"])
    np.testing.assert_array_equal(hs2, want2)


def test_a_parameter_read_by_two_nodes_gets_the_sum_of_their_gradients():
    net = (Node("A", L.affine, {"W": "W", "b": "b"}), Node("tanh", L.tanh), Node("B", L.affine, {"W": "W", "b": "b"}))
    params = {"W": _normal(0, (3, 3)), "b": _normal(1, (3,))}
    x, dy = _normal(2, (4, 3)), _normal(3, (4, 3))
    _, caches, _ = runner.forward(net, params, x)
    grads, dx, _ = runner.backward(net, params, caches, dy)
    want = jax.grad(lambda p, x: jnp.sum(runner.forward(net, p, x)[0] * dy), argnums=(0, 1))(params, x)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), (grads, dx), want)


def test_fast_forwards_run_instead_and_keep_no_caches():
    calls = []

    def fast(p, x, *, scale):
        calls.append(scale)
        return L.relu.forward({}, x)[0] * 1.0

    net = (Node("relu", L.relu, fast=lambda p, x: fast(p, x, scale=2.0)),)
    x = _normal(0, (2, 3))
    y, caches, _ = runner.forward(net, {}, x, fast=True)
    assert caches is None and calls == [2.0]
    np.testing.assert_array_equal(y, jnp.maximum(x, 0))
    with pytest.raises(ValueError, match=r"runner.backward: caches is None, expected the 1 caches of "
                                         r"forward\(\.\.\., fast=False\)"):
        runner.backward(net, {}, caches, y)
    _, caches, _ = runner.forward(net, {}, x)
    assert len(caches) == 1 and calls == [2.0]


def test_last_step_layer_three_way():
    check_layer(runner.last_step, {}, _normal(0, (2, 4, 3)))


def test_errors_name_the_network_and_the_layer():
    params, state, x, _ = _mlp_setup()
    with pytest.raises(ValueError, match=r"^mlp layer 5 \(Affine2\): affine.forward: x has 4 features per "
                                         r"sample \(shape \(7, 4\)\), expected 9 \(W.shape\[0\]\)$"):
        runner.forward(MLP, {**params, "W2": _normal(0, (9, 6))}, x, state=state, name="mlp")
    with pytest.raises(ValueError, match=r"^network layer 1 \(Affine1\): params has no 'b1'; it has keys"):
        runner.forward(MLP, {k: v for k, v in params.items() if k != "b1"}, x, state=state)
    with pytest.raises(ValueError, match=r"layer 2 \(BatchNorm1\): state has no 'mean1'"):
        runner.forward(MLP, params, x)
    with pytest.raises(ValueError, match=r"^net: train is True, but key is None; expected a jax.random key "
                                         r"for the random masks of Dropout1, Dropout2$"):
        runner.forward(MLP, params, x, state=state, train=True, name="net")
