"""fnn.models.mlp: shapes, and the hand-written backprop = jax.grad = numerical gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import gradient as G
from fnn.models import mlp


def _data(seed, N=5, D=6, C=3):
    kx, kt = jax.random.split(jax.random.key(seed))
    return jax.random.normal(kx, (N, D)), jax.random.randint(kt, (N,), 0, C)


def test_init_shapes_agree_with_apply():
    params = mlp.init(jax.random.key(0), 784, [50, 100], 10, weight_init=0.01)
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (784, 50), "b1": (50,), "W2": (50, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
    np.testing.assert_array_equal(params["b2"], 0.0)
    assert abs(float(params["W1"].std()) - 0.01) < 0.001
    out = jax.eval_shape(mlp.apply, params, jax.ShapeDtypeStruct((7, 1, 28, 28), jnp.float64))
    assert out.shape == (7, 10)


def test_he_and_xavier_scales():
    for name, gain in [("he", 2.0), ("xavier", 1.0)]:
        params = mlp.init(jax.random.key(0), 400, [300], 10, weight_init=name)
        np.testing.assert_allclose(float(params["W2"].std()), np.sqrt(gain / 300), rtol=0.1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_manual_grad_three_way(activation, seed, weight_decay):
    x, t = _data(seed)
    params = mlp.init(jax.random.key(seed + 10), 6, [4, 5], 3, weight_init=1.0, dtype=jnp.float64)
    kw = {"activation": activation, "weight_decay": weight_decay}
    errors = G.gradient_check(lambda p: mlp.manual_grad(p, x, t, **kw)[1],
                              lambda p: mlp.loss(p, x, t, **kw), params)
    assert G.max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert G.max_error(errors["manual_vs_numerical"]) < 1e-5, errors
    value, _ = mlp.manual_grad(params, x, t, **kw)
    np.testing.assert_allclose(value, mlp.loss(params, x, t, **kw), rtol=1e-14)


def test_manual_grad_one_hot_labels_and_image_input():
    x = jax.random.normal(jax.random.key(0), (4, 1, 3, 3))
    t = jax.nn.one_hot(jnp.array([0, 2, 1, 2]), 3, dtype=x.dtype)
    params = mlp.init(jax.random.key(1), 9, [5], 3, weight_init=0.5, dtype=jnp.float64)
    errors = G.gradient_check(lambda p: mlp.manual_grad(p, x, t)[1], lambda p: mlp.loss(p, x, t), params)
    assert G.max_error(errors["manual_vs_autodiff"]) < 1e-7


def test_model_bundle_matches_functions():
    model = mlp.model(6, [4], 3, weight_init=0.1, dtype=jnp.float64)
    params, state = model.init(jax.random.key(0))
    assert state == {}
    x, t = _data(0)
    scores, _ = model.apply(params, state, x)
    np.testing.assert_allclose(scores, mlp.apply(params, x), rtol=1e-14)
    loss, grads, _ = model.manual_grad(params, state, x, t)
    (loss_auto, _), grads_auto = jax.value_and_grad(model.loss, has_aux=True)(params, state, x, t)
    np.testing.assert_allclose(loss, loss_auto, rtol=1e-14)
    assert G.max_error(G.relative_error(grads, grads_auto)) < 1e-12


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mlp.init: hidden_sizes\\[1\\] is 0, expected a positive integer"):
        mlp.init(jax.random.key(0), 4, [3, 0], 2)
    with pytest.raises(ValueError, match="activation is 'softplus'"):
        mlp.model(4, [3], 2, activation="softplus")
    with pytest.raises(ValueError, match="weight_init is 'kaiming'"):
        mlp.model(4, [3], 2, weight_init="kaiming")
    with pytest.raises(ValueError, match="weight_decay is -1"):
        mlp.model(4, [3], 2, weight_decay=-1)
    params = mlp.init(jax.random.key(0), 4, [3], 2)
    del params["b2"]
    with pytest.raises(ValueError, match="mlp: params has keys"):
        mlp.apply(params, jnp.zeros((1, 4)))


# ---- MultiLayerNetExtend options: batch norm, dropout, weight decay (DLFS1 §6.3, §6.4) ----


def _extend_setup(seed=0, use_batchnorm=True):
    x, t = _data(seed, N=6)
    params = mlp.init(jax.random.key(seed + 10), 6, [4, 5], 3, weight_init=1.0,
                      use_batchnorm=use_batchnorm, dtype=jnp.float64)
    if use_batchnorm:  # gamma/beta away from 1/0 so their gradients are exercised
        kg = jax.random.split(jax.random.key(seed + 20), 4)
        for i, k in zip([1, 2], kg[:2], strict=True):
            params[f"gamma{i}"] = params[f"gamma{i}"] + 0.3 * jax.random.normal(k, params[f"gamma{i}"].shape)
        for i, k in zip([1, 2], kg[2:], strict=True):
            params[f"beta{i}"] = 0.5 * jax.random.normal(k, params[f"beta{i}"].shape)
    state = mlp.init_state([4, 5], use_batchnorm=use_batchnorm, dtype=jnp.float64)
    return params, state, x, t


def test_init_with_batchnorm_has_gamma_beta_and_state():
    params, state, _, _ = _extend_setup()
    assert {k: v.shape for k, v in params.items() if k[0] in "gb"} == {
        "gamma1": (4,), "beta1": (4,), "gamma2": (5,), "beta2": (5,), "b1": (4,), "b2": (5,), "b3": (3,)}
    assert {k: v.shape for k, v in state.items()} == {
        "running_mean1": (4,), "running_var1": (4,), "running_mean2": (5,), "running_var2": (5,)}
    assert mlp.num_layers(params) == 3


@pytest.mark.parametrize("use_batchnorm,drop_rate,weight_decay,activation", [
    (True, 0.0, 0.0, "relu"), (True, 0.3, 0.1, "relu"), (False, 0.3, 0.1, "tanh"),
    (True, 0.5, 0.05, "sigmoid")])
def test_extend_manual_grad_three_way(use_batchnorm, drop_rate, weight_decay, activation):
    """Train mode, float64: backprop = jax.grad = numerical gradient, with the same dropout key."""
    params, state, x, t = _extend_setup(1, use_batchnorm)
    kw = {"activation": activation, "weight_decay": weight_decay, "drop_rate": drop_rate,
          "state": state, "train": True, "key": jax.random.key(7)}
    errors = G.gradient_check(jax.jit(lambda p: mlp.manual_grad(p, x, t, **kw)[1]),
                              jax.jit(lambda p: mlp.loss(p, x, t, **kw)), params)
    value, grads = mlp.manual_grad(params, x, t, **kw)
    if use_batchnorm:
        # A bias right before a batch norm is cancelled by its mean: its true gradient is 0, and
        # every path returns rounding noise, whose *relative* error means nothing. Check it is ~0.
        for k in ("b1", "b2"):
            np.testing.assert_allclose(grads[k], 0.0, atol=1e-14)
            for e in errors.values():
                del e[k]
    assert G.max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert G.max_error(errors["manual_vs_numerical"]) < 1e-5, errors
    np.testing.assert_allclose(value, mlp.loss(params, x, t, **kw), rtol=1e-14)


def test_extend_model_bundle_both_paths_agree_and_return_state():
    m = mlp.model(6, [4, 5], 3, weight_init=1.0, use_batchnorm=True, drop_rate=0.3,
                  weight_decay=0.1, dtype=jnp.float64)
    assert m.name == "mlp[6-4-5-3,relu,batchnorm,dropout0.3,weight_decay0.1]"
    params, state = m.init(jax.random.key(0))
    x, t = _data(2, N=6)
    key = jax.random.key(3)
    loss, grads, new_state = m.manual_grad(params, state, x, t, key=key)
    (loss_auto, state_auto), grads_auto = jax.value_and_grad(m.loss, has_aux=True)(
        params, state, x, t, key=key)
    np.testing.assert_allclose(loss, loss_auto, rtol=1e-14)
    errors = G.relative_error(grads, grads_auto)
    assert max(v for k, v in errors.items() if k not in ("b1", "b2")) < 1e-10, errors
    np.testing.assert_allclose(grads_auto["b1"], 0.0, atol=1e-14)  # cancelled by batch norm
    chex_close = np.testing.assert_allclose
    # the state returned is the book's update of the first batch norm's running statistics
    a1 = np.asarray(x) @ np.asarray(params["W1"]) + np.asarray(params["b1"])
    chex_close(new_state["running_mean1"], 0.1 * a1.mean(0), rtol=1e-12)
    chex_close(new_state["running_var1"], 0.1 * a1.var(0), rtol=1e-12)
    jax.tree_util.tree_map(lambda a, b: chex_close(a, b, rtol=1e-14), new_state, state_auto)
    np.testing.assert_array_equal(state["running_mean1"], 0.0)  # the input state is untouched
    # another key, other masks, another loss; the same key, the same loss
    assert float(m.loss(params, state, x, t, key=jax.random.key(4))[0]) != float(loss)
    np.testing.assert_allclose(m.loss(params, state, x, t, key=key)[0], loss, rtol=1e-14)


def test_extend_eval_mode_uses_running_stats_and_test_time_dropout():
    m = mlp.model(6, [4, 5], 3, weight_init=1.0, use_batchnorm=True, drop_rate=0.4, dtype=jnp.float64)
    params, state = m.init(jax.random.key(0))
    x, _ = _data(0, N=6)
    _, state = m.apply(params, state, x, train=True, key=jax.random.key(1))
    scores, same = m.apply(params, state, x, train=False)
    assert same is not None and all(same[k] is state[k] for k in state)
    # by hand: affine, (x - running_mean) / sqrt(running_var + eps) * gamma + beta, relu, * 0.6
    h = np.asarray(x)
    for i in (1, 2):
        a = h @ np.asarray(params[f"W{i}"]) + np.asarray(params[f"b{i}"])
        a = (a - np.asarray(state[f"running_mean{i}"])) / np.sqrt(np.asarray(state[f"running_var{i}"]) + 1e-6)
        h = np.maximum(a * np.asarray(params[f"gamma{i}"]) + np.asarray(params[f"beta{i}"]), 0) * 0.6
    np.testing.assert_allclose(scores, h @ np.asarray(params["W3"]) + np.asarray(params["b3"]), rtol=1e-12)
    # eval mode needs no key and is deterministic, one sample at a time
    np.testing.assert_allclose(m.apply(params, state, x[:2])[0], scores[:2], rtol=1e-13)


def test_extend_options_are_checked():
    with pytest.raises(ValueError, match="mlp.model: drop_rate is 1.0, expected a probability"):
        mlp.model(4, [3], 2, drop_rate=1.0)
    m = mlp.model(4, [3], 2, drop_rate=0.5)
    params, state = m.init(jax.random.key(0))
    with pytest.raises(ValueError, match="key is None; expected a jax.random key"):
        m.loss(params, state, jnp.zeros((2, 4)), jnp.array([0, 1]))
    params = mlp.init(jax.random.key(0), 4, [3], 2, use_batchnorm=True)
    with pytest.raises(ValueError, match="has batch norm .* but state is None"):
        mlp.apply(params, jnp.zeros((2, 4)))


def test_traced_weight_init_and_weight_decay_under_vmap():
    """A numeric weight_init / weight_decay may be traced: vmap builds models that differ in them."""
    x, t = _data(0)

    def loss_of(std, wd):
        m = mlp.model(6, [4], 3, weight_init=std, weight_decay=wd, dtype=jnp.float64)
        params, state = m.init(jax.random.key(0))
        return m.loss(params, state, x, t)[0]

    stds, wds = jnp.array([0.1, 1.0]), jnp.array([0.0, 0.5])
    batched = jax.vmap(loss_of)(stds, wds)
    for i in range(2):
        m = mlp.model(6, [4], 3, weight_init=float(stds[i]), weight_decay=float(wds[i]), dtype=jnp.float64)
        params, state = m.init(jax.random.key(0))
        np.testing.assert_allclose(batched[i], m.loss(params, state, x, t)[0], rtol=1e-13)


def test_hidden_sizes_may_be_one_int():
    """``mlp.model(784, 50, 10)`` is the TwoLayerNet shape, as ``two_layer_net(784, 50, 10)``."""
    m = mlp.model(784, 50, 10)
    assert m.name == mlp.model(784, [50], 10).name == "mlp[784-50-10,relu]"
    params, state = jax.eval_shape(m.init, jax.random.key(0))
    assert {k: v.shape for k, v in params.items()} == {"W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    assert set(mlp.init_state(4, use_batchnorm=True)) == {"running_mean1", "running_var1"}
    with pytest.raises(TypeError, match=r"mlp.model: hidden_sizes is '50', expected an int or a list of ints"):
        mlp.model(784, "50", 10)
    with pytest.raises(ValueError, match=r"mlp.model: hidden_sizes\[0\] is 0, expected a positive integer"):
        mlp.model(784, 0, 10)


def test_network_has_the_books_layer_names():
    """The book's OrderedDict of MultiLayerNetExtend (DLFS1 §6.3.2), as runner nodes."""
    net = mlp.network(3, "relu", use_batchnorm=True, drop_rate=0.5)
    assert [node.name for node in net] == [
        "Affine1", "BatchNorm1", "Activation_function1", "Dropout1",
        "Affine2", "BatchNorm2", "Activation_function2", "Dropout2", "Affine3"]
    assert [node.name for node in mlp.network(2)] == ["Affine1", "Activation_function1", "Affine2"]


def test_a_shape_error_names_the_layer():
    params = mlp.init(jax.random.key(0), 4, [3, 5], 2)
    params["W2"] = jnp.zeros((6, 5))
    with pytest.raises(ValueError, match=r"mlp layer 3 \(Affine2\): affine.forward: x has 3 features"):
        mlp.apply(params, jnp.zeros((2, 4)))


def test_model_docstring_explains_the_contract():
    import pydoc

    import fnn

    assert fnn.models.Model is mlp.Model
    text = pydoc.render_doc(fnn.models.Model, renderer=pydoc.plaintext)
    for part in ("init(key)", "-> (params, state)", "apply(params, state, x, *, train=False, key=None)",
                 "manual_grad(params, state, x, t, *, key=None)", "jax.grad", "class Model"):
        assert part in text, part
    assert "module docstring" not in fnn.models.Model.__doc__
