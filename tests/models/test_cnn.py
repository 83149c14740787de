"""SimpleConvNet, DeepConvNet, LeNet-5 (DLFS1 ch7–8): shapes, both gradient paths, the book's weights."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn.gradient import gradient_check, max_error
from fnn.models import cnn
from fnn.step import init_train_state, make_evaluate, make_step

# small versions of the three networks, float64, for the gradient checks
SMALL = {
    "simple_convnet": (lambda conv: cnn.simple_convnet(
        (2, 9, 9), {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1}, hidden_size=6,
        output_size=4, weight_init_std=0.3, conv=conv, dtype=jnp.float64), (2, 9, 9), 4),
    "deep_convnet": (lambda conv: cnn.deep_convnet(
        (1, 8, 8), hidden_size=5, output_size=3, filter_nums=(2, 2, 3, 3, 4, 4), conv=conv,
        dtype=jnp.float64), (1, 8, 8), 3),
    "lenet5": (lambda conv: cnn.lenet5((1, 12, 12), output_size=3, conv=conv,
                                       dtype=jnp.float64), (1, 12, 12), 3),
}


def batch(input_dim, classes, N=3, seed=0):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.normal(size=(N, *input_dim))),
            jnp.asarray(rng.integers(0, classes, N), jnp.int32))


def small(name):
    """The small model on every conv kernel: its params, and per kernel the jitted loss and the
    book's backprop, on one batch with one dropout key, float64."""
    make, input_dim, classes = SMALL[name]
    models = {conv: make(conv) for conv in cnn.CONV_CHOICES}
    params, state = models["lax"].init(jax.random.key(1))
    x, t = batch(input_dim, classes)
    key = jax.random.key(2)  # the same dropout masks for every path
    f = {conv: jax.jit(lambda p, m=m: m.loss(p, state, x, t, key=key)[0]) for conv, m in models.items()}
    manual = {conv: jax.jit(lambda p, m=m: m.manual_grad(p, state, x, t, key=key)[1])
              for conv, m in models.items()}
    return params, f, manual


@pytest.mark.parametrize("name", ["simple_convnet",
                                  pytest.param("deep_convnet", marks=pytest.mark.slow),
                                  pytest.param("lenet5", marks=pytest.mark.slow)])
def test_manual_grad_matches_autodiff(name):
    """The book's backprop on each kernel (im2col, lax, auto) vs jax.grad of each kernel's loss,
    and vs jax.grad of the im2col forward itself: all the same numbers."""
    params, f, manual = small(name)
    want = jax.jit(jax.grad(f["im2col"]))(params)
    for conv in cnn.CONV_CHOICES:
        for g in (manual[conv](params), jax.jit(jax.grad(f[conv]))(params)):
            jax.tree_util.tree_map(
                lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12), g, want)
        np.testing.assert_allclose(f[conv](params), f["im2col"](params), rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_three_way_gradient(name):
    """Backprop ("auto" kernels) vs jax.grad (lax kernel) vs central differences, in training mode
    (DLFS1 §5.7.3)."""
    params, f, manual = small(name)
    with jax.numpy_rank_promotion("allow"):  # fnn.gradient broadcasts (n,) + (k, n)
        errors = gradient_check(manual["auto"], f["lax"], params)
    assert max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert max_error(errors["manual_vs_numerical"]) < 1e-5, errors


@pytest.mark.parametrize("make,shapes", [
    (cnn.simple_convnet, {"W1": (30, 1, 5, 5), "W2": (4320, 100), "W3": (100, 10)}),
    (cnn.deep_convnet, {"W1": (16, 1, 3, 3), "W4": (32, 32, 3, 3), "W6": (64, 64, 3, 3),
                        "W7": (1024, 50), "W8": (50, 10)}),
    (cnn.lenet5, {"W1": (6, 1, 5, 5), "W2": (16, 6, 5, 5), "W3": (400, 120), "W4": (120, 84),
                  "W5": (84, 10)}),
])
def test_book_shapes(make, shapes):
    """init promises the book's parameter shapes, and apply returns (N, 10) for MNIST images."""
    m = make()
    params, state = jax.eval_shape(m.init, jax.random.key(0))
    for k, shape in shapes.items():
        assert params[k].shape == shape, k
        assert params["b" + k[1:]].shape == shape[:1] if len(shape) == 4 else shape[1:]
    x = jax.ShapeDtypeStruct((7, 1, 28, 28), jnp.float32)
    scores, _ = jax.eval_shape(lambda p, x: m.apply(p, state, x), params, x)
    assert scores.shape == (7, 10) and scores.dtype == jnp.float32


@pytest.mark.slow
def test_init_is_the_books_distribution():
    p, _ = cnn.simple_convnet().init(jax.random.key(0))
    assert abs(float(jnp.std(p["W2"])) - 0.01) < 5e-4 and float(jnp.abs(p["b1"]).max()) == 0
    p, _ = cnn.deep_convnet().init(jax.random.key(0))
    for k, fan_in in (("W2", 16 * 9), ("W7", 1024)):  # He: std sqrt(2 / fan_in)
        np.testing.assert_allclose(float(jnp.std(p[k])), np.sqrt(2 / fan_in), rtol=0.05)


@pytest.mark.slow
def test_dropout_scales_at_test_time_and_needs_a_key_in_training():
    m = cnn.deep_convnet((1, 8, 8), hidden_size=5, filter_nums=(2, 2, 2, 2, 2, 2),
                         dtype=jnp.float64)
    params, state = m.init(jax.random.key(0))
    x, t = batch((1, 8, 8), 10)
    with pytest.raises(ValueError, match="key is None"):
        m.loss(params, state, x, t)
    apply = jax.jit(lambda k: m.apply(params, state, x, train=True, key=k)[0])
    assert not np.allclose(apply(jax.random.key(1)), apply(jax.random.key(2)))
    # evaluation multiplies by 1 - drop_rate at both dropouts; with the zero initial biases the
    # scores are 0.5 * 0.5 times those without dropout (the book keeps a dropout on the scores)
    no_drop = cnn.deep_convnet((1, 8, 8), hidden_size=5, filter_nums=(2, 2, 2, 2, 2, 2),
                               drop_rate=0.0, dtype=jnp.float64)
    evaluate = jax.jit(lambda: (m.apply(params, state, x)[0], no_drop.apply(params, state, x)[0]))
    with_drop, without = evaluate()
    np.testing.assert_allclose(with_drop, 0.25 * without, rtol=1e-12, atol=1e-15)


def test_training_steps_lower_the_loss_on_both_paths():
    m = cnn.simple_convnet((1, 8, 8), {"filter_num": 4, "filter_size": 3}, hidden_size=8,
                           weight_init_std=0.1, dtype=jnp.float64)
    x, t = batch((1, 8, 8), 10, N=20)
    for grad in ("manual", "autodiff"):
        opt = optax.adam(0.01)
        ts = init_train_state(m, opt, jax.random.key(0))
        step = jax.jit(make_step(m, opt, grad=grad))
        first = None
        for i in range(15):
            ts, metrics = step(ts, (x, t), jax.random.key(i))
            first = metrics["loss"] if first is None else first
        assert float(metrics["loss"]) < 0.9 * float(first), grad


def test_errors():
    m = cnn.simple_convnet()
    params, state = m.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"simple_convnet.apply: x has shape \(2, 784\), expected "
                                         r"\(N, 1, 28, 28\) \(NCHW images; load the data with "
                                         r"flatten=False\)"):
        m.apply(params, state, jnp.zeros((2, 784)))
    with pytest.raises(ValueError, match=r"cnn.model: conv is 'fft', expected one of"):
        cnn.simple_convnet(conv="fft")
    with pytest.raises(ValueError, match=r"from_book_params: W1 has shape \(30, 1, 3, 3\), "
                                         r"expected \(30, 1, 5, 5\)"):
        cnn.from_book_params(m, {**params, "W1": np.zeros((30, 1, 3, 3))})
    with pytest.raises(ValueError, match=r"from_book_params: the book's params have keys"):
        cnn.from_book_params(m, {"W1": params["W1"]})
    with pytest.raises(ValueError, match=r"window height is 5, larger than the padded input"):
        cnn.simple_convnet((1, 4, 4))


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("conv", cnn.CONV_CHOICES)
@pytest.mark.parametrize("name,accuracy", [("simple_convnet", 0.9600), ("deep_convnet", 0.9797)])
def test_book_weights_reproduce_the_books_accuracy(data_dir, name, accuracy, conv):
    """The book's trained pickles give exactly the book's test accuracy: a layout check of filters
    (OIHW), im2col's column order and the NCHW flatten before the first affine."""
    from fnn.data import load
    from fnn.data.weights import book_file

    try:
        book_file(f"{name}_params.pkl", download=False)
    except FileNotFoundError:
        pytest.skip(f"needs {name}_params.pkl under $FNN_DATA_DIR/book")
    (_, _), (x, t) = load("mnist", flatten=False)
    m, params = cnn.book_pretrained(name, conv=conv, dtype=jnp.float32, download=False)
    result = make_evaluate(m, batch_size=500)(params, {}, jnp.asarray(x), jnp.asarray(t))
    assert round(float(result["accuracy"]) * len(t)) == round(accuracy * len(t))


def test_specs_are_numbered_in_order_and_checked_when_built():
    """Conv/Affine params are W1, b1, W2, ... in order, without hand-written indices;
    a missing Flatten, a Conv after it or a window too large is refused, naming the layer."""
    layers = (cnn.Conv(3, 3, pad=1), cnn.Act(), cnn.Pool(2, 2), cnn.Conv(4, 3), cnn.Act(), cnn.Flatten(),
              cnn.Affine(5), cnn.Act("tanh"), cnn.Dropout(0.2), cnn.Affine(2))
    assert cnn.param_names(layers) == [("W1", "b1"), None, None, ("W2", "b2"), None, None,
                                       ("W3", "b3"), None, None, ("W4", "b4")]
    m = cnn.model(layers, (2, 8, 8), dtype=jnp.float64)
    params, state = jax.eval_shape(m.init, jax.random.key(0))
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (3, 2, 3, 3), "b1": (3,), "W2": (4, 3, 3, 3), "b2": (4,), "W3": (4 * 2 * 2, 5), "b3": (5,),
        "W4": (5, 2), "b4": (2,)}
    with pytest.raises(ValueError, match=r"cnn.model: layer 4 \(Affine\(size=5\)\) gets images \(3, 4, 4\), "
                                         r"expected features: put Flatten\(\) before it"):
        cnn.model(layers[:3] + (cnn.Affine(5),), (2, 8, 8))
    with pytest.raises(ValueError, match=r"layer 3 \(Conv\(filter_num=4, .*\)\) follows a Flatten"):
        cnn.model((cnn.Flatten(), cnn.Affine(5), cnn.Conv(4, 3)), (2, 8, 8))
    with pytest.raises(ValueError, match=r"cnn.model: layer 4 \(Conv\(filter_num=4, filter_size=5, stride=1, "
                                         r"pad=0\)\): window height is 5, larger than the padded input"):
        cnn.model(layers[:3] + (cnn.Conv(4, 5),), (2, 8, 8))
    with pytest.raises(ValueError, match=r"layer 1 \(Conv\(filter_num=0, .*\)\): filter_num is 0, expected a "
                                         r"positive integer"):
        cnn.model((cnn.Conv(0, 3),), (2, 8, 8))
    with pytest.raises(TypeError, match=r"cnn.model: layer 2 \(\('affine', 5\)\) is not a layer spec, "
                                        r"expected one of Conv, Pool, Act, Flatten, Affine, Dropout"):
        cnn.model((cnn.Flatten(), ("affine", 5)), (2, 8, 8))
    with pytest.raises(ValueError, match=r"activation is 'gelu'"):
        cnn.model((cnn.Flatten(), cnn.Act("gelu")), (2, 8, 8))


def test_shape_errors_at_run_time_name_the_layer():
    m = cnn.simple_convnet((1, 8, 8), {"filter_num": 2, "filter_size": 3}, hidden_size=4)
    params, state = m.init(jax.random.key(0))
    params["W2"] = jnp.zeros((17, 4))
    x, t = batch((1, 8, 8), 10)
    for run in (lambda: m.apply(params, state, x), lambda: m.manual_grad(params, state, x, t)):
        with pytest.raises(ValueError, match=r"simple_convnet layer 5 \(Affine W2\): affine.forward: x has "
                                             r"18 features per sample \(shape \(3, 18\)\), expected 17"):
            run()
