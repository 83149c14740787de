"""Property tests (hypothesis): invariants that must hold for every shape and value, not just a chosen few.

* softmax: every row is a probability vector summing to 1, unchanged by adding a constant to a row;
* the MLP's hand-written backprop equals `jax.grad` on random layer sizes, batch sizes, activations;
* a checkpoint gives back every bit of any pytree of arrays.

(im2col/col2im adjointness is tested with the convolution layers, tests/layers/test_conv.py.)
"""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fnn import checkpoint
from fnn import functions as F
from fnn.gradient import max_error, relative_error
from fnn.models import mlp

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])

softmax, log_softmax = jax.jit(F.softmax), jax.jit(F.log_softmax)  # one compile a shape, not one an op
scores = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7),
                    elements=st.floats(-1e4, 1e4, allow_nan=False))


@FAST
@given(scores)
def test_softmax_rows_are_probabilities_that_sum_to_one(a):
    y = np.asarray(softmax(jnp.asarray(a)))
    assert y.shape == a.shape
    assert np.all(y >= 0) and np.all(y <= 1)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.exp(np.asarray(log_softmax(jnp.asarray(a)))), y, rtol=1e-12, atol=1e-300)


@FAST
@given(scores, st.floats(-1e4, 1e4))
def test_softmax_ignores_a_constant_added_to_a_row(a, c):
    np.testing.assert_allclose(softmax(jnp.asarray(a + c)), softmax(jnp.asarray(a)), rtol=1e-9, atol=1e-12)


@SLOWER
@given(D=st.integers(1, 6), hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
       C=st.integers(2, 5), N=st.integers(1, 6), activation=st.sampled_from(["relu", "sigmoid", "tanh"]),
       weight_decay=st.sampled_from([0.0, 0.1]), one_hot=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_hand_gradient_equals_jax_grad_on_random_mlps(D, hidden, C, N, activation, weight_decay,
                                                       one_hot, seed):
    rng = np.random.default_rng(seed)  # numpy draws: nothing to compile but the check itself
    sizes = [D, *hidden, C]
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        params[f"W{i}"] = jnp.asarray(rng.normal(0, np.sqrt(2 / n_in), (n_in, n_out)))
        params[f"b{i}"] = jnp.asarray(rng.normal(0, 0.1, n_out))
    x = jnp.asarray(rng.normal(size=(N, D)))
    t = rng.integers(0, C, N)
    t = jnp.asarray(np.eye(C)[t] if one_hot else t.astype(np.int32))
    kw = {"activation": activation, "weight_decay": weight_decay}

    @jax.jit  # one compile an example instead of one an operation
    def both(params, x, t):
        return mlp.manual_grad(params, x, t, **kw), jax.value_and_grad(mlp.loss)(params, x, t, **kw)

    (loss, grads), (auto_loss, auto) = both(params, x, t)
    np.testing.assert_allclose(loss, auto_loss, rtol=1e-12)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)
    assert max_error(relative_error(grads, auto)) < 1e-6


DTYPES = st.sampled_from([np.float32, np.float64, np.int32, np.uint8, np.bool_, jnp.bfloat16])


@st.composite
def pytrees(draw):
    names = draw(st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=1, max_size=4, unique=True))
    tree = {}
    for name in names:
        dtype = draw(DTYPES)
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
        bits = draw(hnp.arrays(np.uint8, (int(np.prod(shape)) * np.dtype(dtype).itemsize,)))
        tree[name] = np.frombuffer(bits.tobytes(), dtype).reshape(shape)  # any bit pattern, NaNs too
    return {"params": tree, "step": np.int32(draw(st.integers(0, 1000)))}


@FAST
@given(pytrees(), st.integers(0, 10**6))
def test_checkpoint_round_trip_keeps_every_bit(tmp_path_factory, tree, epoch):
    directory = tmp_path_factory.mktemp("ckpt")
    ck = checkpoint.load(checkpoint.save(directory, tree, epoch=epoch, step=epoch))
    back = checkpoint.restore(ck, tree)
    for a, b in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(back), strict=True):
        b = np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
