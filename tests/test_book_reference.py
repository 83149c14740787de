"""fnn against the books' own code, value by value.

``tests/reference/book_reference.npz`` holds inputs and outputs of the classes of the books' current
code (DLFS1 ``common/layers.py``, ``common/optimizer.py``, the MLPs and conv nets; DLFS2
``common/time_layers.py`` and the LMs), written by ``scripts/book_reference.py``; the .json beside it
names the books' commits and what every value is. Each test feeds the recorded inputs to fnn's public
API and compares the outputs; the books are not needed.

Tolerance: ``max|fnn - book| / max|book|`` per array below RTOL = 1e-9, in float64 on both sides
(DLFS2's layers were run in float64, see the script). Where fnn deliberately differs, the test
states the difference and pins its size instead:

* the book's loss is ``-mean log(y_t + 1e-7)``, fnn's ``-mean log_softmax_t``: the book's is
  lower by exactly ``mean log(1 + 1e-7 / y_t)`` (about 1e-6 of the loss for ordinary scores, 11.3
  when a y_t underflows to 2e-22; ``test_softmax_with_loss``); the gradients are the same;
* the book's float32 Rnnlm (``Rnnlm_float32``): fnn in float64 and in float32 are both within
  float32 rounding of it (``test_rnnlm_float32``).

Dropout masks: the book draws them with ``np.random.rand``, fnn with ``jax.random.bernoulli``. The
tests replace ``jax.random.bernoulli`` by a function that hands out the book's recorded masks in
order (checking the shape and the keep probability), so fnn's own dropout code runs on the book's
masks (`book_masks`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn.optim as O
from fnn import functions as F
from fnn import layers as FL
from fnn.layers.dropout import dropout
from fnn.layers.normalization import batch_norm
from fnn.layers.pooling import pooling
from fnn.models import attention_seq2seq, cnn, mlp, rnnlm, seq2seq

REFERENCE = Path(__file__).parent / "reference" / "book_reference.npz"
META = json.loads(REFERENCE.with_suffix(".json").read_text())
with np.load(REFERENCE) as _npz:
    ARRAYS = {name: _npz[name] for name in _npz.files}

RTOL = 1e-9
F64 = jnp.float64
# XLA:CPU's compile is most of each model test's time; these programs are tiny, so skip its
# expensive passes (as tests/optim/test_transforms.py does)
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def jit(fn):
    return jax.jit(fn, compiler_options=FAST_COMPILE)


class Case(dict):
    """The recorded values of one case, ``c.x`` or ``c["x"]``."""

    __getattr__ = dict.__getitem__


def case(name: str) -> Case:
    prefix = name + "/"
    values = Case({k[len(prefix):]: v for k, v in ARRAYS.items() if k.startswith(prefix)})
    assert values, f"no recorded case {name!r}"
    return values


def rel_err(actual, expected) -> float:
    """max|actual - expected| / max|expected| (max|actual| when expected is all zeros)."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert a.shape == e.shape, f"shape {a.shape}, the book's {e.shape}"
    scale = np.max(np.abs(e)) if e.size and np.any(e) else 1.0
    return float(np.max(np.abs(a - e)) / scale) if e.size else 0.0


def check(actual, expected, what: str, rtol: float = RTOL) -> None:
    err = rel_err(actual, expected)
    assert err < rtol, f"{what}: relative error {err:.3g} >= {rtol:g}"


def check_tree(actual: dict, expected: dict, what: str, rtol: float = RTOL) -> None:
    assert set(actual) == set(expected), f"{what}: keys {sorted(actual)}, the book's {sorted(expected)}"
    for k in expected:
        check(actual[k], expected[k], f"{what}[{k!r}]", rtol)


@contextlib.contextmanager
def book_masks(monkeypatch, masks, drop_rate: float):
    """``jax.random.bernoulli`` hands out the book's kept-unit masks, in order, for the block."""
    queue = [np.asarray(m, bool) for m in masks]

    def bernoulli(key, p, shape):
        assert queue, "fnn drew more dropout masks than the book"
        mask = queue.pop(0)
        assert tuple(shape) == mask.shape, f"mask shape {tuple(shape)}, the book's {mask.shape}"
        assert float(p) == pytest.approx(1.0 - drop_rate, rel=1e-15), f"keep probability {p}"
        return jnp.asarray(mask)

    with monkeypatch.context() as m:
        m.setattr(jax.random, "bernoulli", bernoulli)
        yield
    assert not queue, f"fnn drew {len(masks) - len(queue)} dropout masks, the book {len(masks)}"


def book_loss_bias(y_t) -> float:
    """How much lower the book's -mean log(y_t + 1e-7) is than -mean log(y_t)."""
    return float(np.mean(np.log1p(1e-7 / np.asarray(y_t))))


def labels_prob(scores, t) -> np.ndarray:
    """softmax(scores)[n, t_n] by fnn's softmax."""
    y = np.asarray(F.softmax(jnp.asarray(scores)))
    return y[np.arange(len(t)), np.asarray(t)]


COVERED: set[str] = set()


def compares(*names):
    """Marks a test as the comparison of the recorded cases `names` (registered at import)."""
    COVERED.update(names)
    return lambda test: test


def test_reference_names_the_books_current_code():
    assert META["books"]["DLFS1"]["commit"].startswith("07b1161")
    assert META["books"]["DLFS2"]["commit"].startswith("842ae31")
    assert set(META["cases"]) == {k.rsplit("/", 1)[0] for k in ARRAYS}


# ================================================================================================
# DLFS1 common/layers.py
# ================================================================================================


@compares("dlfs1/Relu", "dlfs1/Sigmoid")
@pytest.mark.parametrize("name, layer", [("Relu", FL.relu), ("Sigmoid", FL.sigmoid)])
def test_activation(name, layer):
    c = case(f"dlfs1/{name}")
    y, cache = layer.forward({}, jnp.asarray(c.x))
    _, dx = layer.backward({}, cache, jnp.asarray(c.dout))
    check(y, c.y, "y")
    check(dx, c.dx, "dx")


@compares("dlfs1/Affine")
def test_affine():
    c = case("dlfs1/Affine")
    params = {"W": jnp.asarray(c.W), "b": jnp.asarray(c.b)}
    y, cache = FL.affine.forward(params, jnp.asarray(c.x))
    grads, dx = FL.affine.backward(params, cache, jnp.asarray(c.dout))
    check(y, c.y, "y")
    check(dx, c.dx, "dx")
    check_tree(grads, {"W": c.dW, "b": c.db}, "grads")


@compares("dlfs1/SoftmaxWithLoss", "dlfs1/SoftmaxWithLoss_onehot", "dlfs1/SoftmaxWithLoss_extreme")
@pytest.mark.parametrize("name, size", [("SoftmaxWithLoss", 3.1e-6), ("SoftmaxWithLoss_onehot", 3.6e-6),
                                        ("SoftmaxWithLoss_extreme", 11.3)])
def test_softmax_with_loss(name, size):
    """fnn's loss (log_softmax) is the book's (log(y + 1e-7)) plus exactly mean log(1 + 1e-7 / y_t):
    `size`, 1.3e-6 and 1.6e-6 of the loss for ordinary scores; 11.3 when one y_t is 2e-22."""
    c = case(f"dlfs1/{name}")
    loss, cache = FL.softmax_with_loss.forward({}, jnp.asarray(c.x), jnp.asarray(c.t))
    _, dx = FL.softmax_with_loss.backward({}, cache, 1.0)
    check(dx, c.dx, "dx")
    t = c.t.argmax(axis=1) if c.t.ndim == 2 else c.t
    y_t = c.y[np.arange(len(t)), t]
    difference = float(loss) - float(c.loss)
    assert difference == pytest.approx(book_loss_bias(y_t), rel=1e-6, abs=1e-15)
    assert difference == pytest.approx(size, rel=0.05)
    # the book's own formula, in fnn.functions, gives the book's number
    check(F.cross_entropy_error(F.softmax(jnp.asarray(c.x)), jnp.asarray(c.t)), c.loss, "book-form loss")


@compares("dlfs1/Dropout")
def test_dropout(monkeypatch):
    """DLFS1's Dropout: no scaling in training, times (1 - ratio) at test time: fnn's default."""
    c = case("dlfs1/Dropout")
    with book_masks(monkeypatch, [c.mask], 0.3):
        y, cache = dropout.forward({}, jnp.asarray(c.x), key=jax.random.key(0), drop_rate=0.3, train=True)
    _, dx = dropout.backward({}, cache, jnp.asarray(c.dout))
    y_test, _ = dropout.forward({}, jnp.asarray(c.x), drop_rate=0.3, train=False)
    check(y, c.y_train, "y (training)")
    check(dx, c.dx, "dx")
    check(y_test, c.y_test, "y (test)")


@compares("dlfs1/BatchNormalization", "dlfs1/BatchNormalization_4d")
@pytest.mark.parametrize("name", ["dlfs1/BatchNormalization", "dlfs1/BatchNormalization_4d"])
def test_batch_norm(name):
    c = case(name)
    params = {"gamma": jnp.asarray(c.gamma), "beta": jnp.asarray(c.beta)}
    D = c.gamma.shape[0]
    state = ({"running_mean": jnp.asarray(c.running_mean0), "running_var": jnp.asarray(c.running_var0)}
             if "running_mean0" in c else {"running_mean": jnp.zeros(D, F64), "running_var": jnp.zeros(D, F64)})
    y, cache = batch_norm.forward(params, jnp.asarray(c.x), state=state, train=True, momentum=0.9)
    grads, dx = batch_norm.backward(params, cache, jnp.asarray(c.dout))
    y_test, _ = batch_norm.forward(params, jnp.asarray(c.x_test), state=cache.state, train=False)
    check(y, c.y_train, "y (training)")
    check_tree(cache.state, {"running_mean": c.running_mean, "running_var": c.running_var}, "statistics")
    check(dx, c.dx, "dx")
    check_tree(grads, {"gamma": c.dgamma, "beta": c.dbeta}, "grads")
    check(y_test, c.y_test, "y (test)")


@compares("dlfs1/Convolution", "dlfs1/Convolution_stride2_pad1")
@pytest.mark.parametrize("impl", ["im2col", "lax"])
@pytest.mark.parametrize("name", ["dlfs1/Convolution", "dlfs1/Convolution_stride2_pad1"])
def test_convolution(name, impl):
    c = case(name)
    params = {"W": jnp.asarray(c.W), "b": jnp.asarray(c.b)}
    kw = {"stride": int(c.stride), "pad": int(c.pad), "impl": impl}
    y, cache = FL.convolution.forward(params, jnp.asarray(c.x), **kw)
    grads, dx = FL.convolution.backward(params, cache, jnp.asarray(c.dout))
    check(y, c.y, "y")
    check(dx, c.dx, "dx")
    check_tree(grads, {"W": c.dW, "b": c.db}, "grads")


@compares("dlfs1/Pooling", "dlfs1/Pooling_overlap", "dlfs1/Pooling_ties")
@pytest.mark.parametrize("name", ["dlfs1/Pooling", "dlfs1/Pooling_overlap", "dlfs1/Pooling_ties"])
def test_pooling(name):
    """Max pooling; with ties the book sends the gradient to the first maximum of the window."""
    c = case(name)
    size = int(c.size)
    y, cache = pooling.forward({}, jnp.asarray(c.x), pool_h=size, pool_w=size, stride=int(c.stride))
    _, dx = pooling.backward({}, cache, jnp.asarray(c.dout))
    check(y, c.y, "y")
    check(dx, c.dx, "dx")


# ================================================================================================
# DLFS1 common/optimizer.py: >= 50 steps, fed the gradients the book's run was fed
# ================================================================================================

OPTIMIZERS = {
    "SGD": lambda h: O.sgd(h["lr"]),
    "Momentum": lambda h: O.momentum(h["lr"], h["momentum"]),
    "Nesterov": lambda h: O.nesterov(h["lr"], h["momentum"]),
    "AdaGrad": lambda h: O.adagrad(h["lr"]),
    "RMSprop": lambda h: O.rmsprop(h["lr"], h["decay_rate"]),
    "Adam": lambda h: O.adam(h["lr"], h["beta1"], h["beta2"]),
}


def run_on_grads(opt, params0: dict, grads: dict) -> dict:
    """`opt` fed grads[k] at step k; the parameters after each step, leaves (steps, ...)."""

    def body(carry, g):
        p, state = carry
        updates, state = opt.update(g, state, p)
        p = optax.apply_updates(p, updates)
        return (p, state), p

    _, traj = jax.lax.scan(body, (params0, opt.init(params0)), grads)
    return traj


def optimizer_case(name):
    c = case(f"dlfs1/{name}")
    hyper = {k.removeprefix("hyper_"): float(v) for k, v in c.items() if k.startswith("hyper_")}
    params0 = {"W": jnp.asarray(c.W0), "b": jnp.asarray(c.b0)}
    grads = {"W": jnp.asarray(c.dW), "b": jnp.asarray(c.db)}
    return c, hyper, params0, grads


@compares(*(f"dlfs1/{n}" for n in OPTIMIZERS))
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_trajectory(name):
    c, hyper, params0, grads = optimizer_case(name)
    assert c.dW.shape[0] >= 50
    traj = run_on_grads(OPTIMIZERS[name](hyper), params0, grads)
    check(traj["W"], c.W, f"{name} W, all steps")
    check(traj["b"], c.b, f"{name} b, all steps")
    assert rel_err(c.W[-1], c.W0) > 0.1  # the book's run went somewhere


def test_book_nesterov_is_optax_nesterov():
    """The book's current Nesterov (since its January 2021 fix) is optax's nesterov=True."""
    c, hyper, params0, grads = optimizer_case("Nesterov")
    theirs = run_on_grads(optax.sgd(hyper["lr"], momentum=hyper["momentum"], nesterov=True), params0, grads)
    check(theirs["W"], c.W, "optax W", rtol=1e-13)
    check(theirs["b"], c.b, "optax b", rtol=1e-13)


# ================================================================================================
# DLFS1 MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, DeepConvNet
# ================================================================================================


def book_params(c: Case) -> dict:
    return {k.removeprefix("param_"): jnp.asarray(v) for k, v in c.items() if k.startswith("param_")}


def book_grads(c: Case) -> dict:
    return {k.removeprefix("grad_"): v for k, v in c.items() if k.startswith("grad_")}


def check_model_grads(model, params, state, c: Case, *, masks=(), drop_rate=0.0, monkeypatch=None,
                      key=None, zero=()):
    """manual_grad and jax.grad(loss) against the book's gradient; the loss against the book's
    (its 1e-7 bias removed); returns manual_grad's new state.

    `zero`: gradients that are 0 in exact arithmetic (a bias before batch norm, whose mean the
    normalisation removes): on both sides rounding noise, below 1e-15 of the largest gradient."""
    x, t = jnp.asarray(c.x), jnp.asarray(c.t)
    masks_for = (lambda: book_masks(monkeypatch, masks, drop_rate)) if masks else contextlib.nullcontext
    with masks_for():  # jitted here and below: one compile costs less than eager dispatch
        scores, _ = jit(lambda p: model.apply(p, state, x, train=True, key=key))(params)
    with masks_for():
        value, grads, new_state = jit(lambda p: model.manual_grad(p, state, x, t, key=key))(params)
    with masks_for():
        auto = jit(jax.grad(lambda p: model.loss(p, state, x, t, key=key)[0]))(params)
    book = book_grads(c)
    largest = max(np.max(np.abs(g)) for g in book.values())
    for k in zero:
        for what, g in (("book", book.pop(k)), ("manual_grad", grads.pop(k)), ("jax.grad", auto.pop(k))):
            assert np.max(np.abs(g)) < 1e-15 * largest, f"{what}[{k!r}] = {g}"
    check_tree(grads, book, "manual_grad")
    check_tree(auto, book, "jax.grad(loss)")
    bias = book_loss_bias(labels_prob(scores, c.t))
    assert float(value) - bias == pytest.approx(float(c.loss), rel=RTOL)
    return new_state


@compares("dlfs1/MultiLayerNet_relu", "dlfs1/MultiLayerNet_sigmoid")
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_multi_layer_net(activation):
    c = case(f"dlfs1/MultiLayerNet_{activation}")
    model = mlp.model(6, [5, 4], 3, activation=activation, weight_decay=0.1, dtype=F64)
    params = book_params(c)
    check_model_grads(model, params, {}, c)


@compares("dlfs1/MultiLayerNetExtend")
def test_multi_layer_net_extend(monkeypatch):
    """Batch norm, dropout (ratio 0.3, the book's masks) and weight decay 0.05, then test mode."""
    c = case("dlfs1/MultiLayerNetExtend")
    model = mlp.model(6, [5, 4], 3, activation="relu", weight_decay=0.05, use_batchnorm=True,
                      drop_rate=0.3, dtype=F64)
    params = book_params(c)
    _, state0 = model.init(jax.random.key(0))  # zeros, as the book's running statistics start
    state = check_model_grads(model, params, state0, c, masks=[c.mask1, c.mask2], drop_rate=0.3,
                              monkeypatch=monkeypatch, key=jax.random.key(1), zero=("b1", "b2"))
    check_tree(state, {k: c[k] for k in state}, "running statistics")
    scores_test, _ = jit(lambda p: model.apply(p, state, jnp.asarray(c.x), train=False))(params)
    check(scores_test, c.scores_test, "test-mode scores")
    loss_test = (FL.softmax_with_loss.forward({}, scores_test, jnp.asarray(c.t))[0]
                 + mlp.weight_decay_term(params, 0.05))
    bias = book_loss_bias(labels_prob(scores_test, c.t))
    assert float(loss_test) - bias == pytest.approx(float(c.loss_test), rel=RTOL)


@compares("dlfs1/SimpleConvNet")
@pytest.mark.parametrize("conv", ["im2col", "lax"])
def test_simple_convnet(conv):
    c = case("dlfs1/SimpleConvNet")
    model = cnn.simple_convnet(input_dim=(2, 10, 10), conv_param={"filter_num": 3, "filter_size": 3},
                               hidden_size=5, output_size=4, conv=conv, dtype=F64)
    params = cnn.from_book_params(model, book_params(c), dtype=F64)
    check_model_grads(model, params, {}, c)


@compares("dlfs1/DeepConvNet")
@pytest.mark.parametrize("conv", ["auto", pytest.param("im2col", marks=pytest.mark.slow),
                                  pytest.param("lax", marks=pytest.mark.slow)])
def test_deep_convnet(conv, monkeypatch):
    """The book's DeepConvNet with fewer filters, on 12x12 images; its two dropouts (0.5) on the
    book's masks. "auto" runs the first convolution (one channel) on im2col, the others on lax."""
    c = case("dlfs1/DeepConvNet")
    model = cnn.deep_convnet(input_dim=(1, 12, 12), hidden_size=6, output_size=5,
                             filter_nums=tuple(int(f) for f in c.filter_nums), conv=conv, dtype=F64)
    params = cnn.from_book_params(model, book_params(c), dtype=F64)
    check_model_grads(model, params, {}, c, masks=[c.mask1, c.mask2], drop_rate=0.5, monkeypatch=monkeypatch,
                      key=jax.random.key(2))
    scores_test, _ = jit(lambda p: model.apply(p, {}, jnp.asarray(c.x), train=False))(params)
    check(scores_test, c.scores_test, "test-mode scores")


# ================================================================================================
# DLFS2 common/time_layers.py (run in float64 by the script)
# ================================================================================================

CELLS = {"RNN": (FL.rnn_cell, FL.time_rnn), "LSTM": (FL.lstm_cell, FL.time_lstm),
         "GRU": (FL.gru_cell, FL.time_gru)}


def recurrent_params(c: Case) -> dict:
    return {"Wx": jnp.asarray(c.Wx), "Wh": jnp.asarray(c.Wh), "b": jnp.asarray(c.b)}


@compares("dlfs2/RNN", "dlfs2/LSTM", "dlfs2/GRU")
@pytest.mark.parametrize("fam", list(CELLS))
def test_cell(fam):
    c = case(f"dlfs2/{fam}")
    cell, params = CELLS[fam][0], recurrent_params(c)
    if fam == "LSTM":
        (h, c_next), cache = cell.forward(params, (jnp.asarray(c.x), jnp.asarray(c.h_prev), jnp.asarray(c.c_prev)))
        grads, (dx, dh_prev, dc_prev) = cell.backward(params, cache, (jnp.asarray(c.dh), jnp.asarray(c.dc)))
        check(c_next, c.c, "c")
        check(dc_prev, c.dc_prev, "dc_prev")
    else:
        h, cache = cell.forward(params, (jnp.asarray(c.x), jnp.asarray(c.h_prev)))
        grads, (dx, dh_prev) = cell.backward(params, cache, jnp.asarray(c.dh))
    check(h, c.h, "h")
    check(dx, c.dx, "dx")
    check(dh_prev, c.dh_prev, "dh_prev")
    check_tree(grads, {"Wx": c.dWx, "Wh": c.dWh, "b": c.db}, "grads")


@compares("dlfs2/TimeRNN", "dlfs2/TimeLSTM", "dlfs2/TimeGRU")
@pytest.mark.parametrize("fam", list(CELLS))
def test_time_layer(fam):
    """Stateful from a given h0 (and c0); BPTT without a gradient from the future."""
    c = case(f"dlfs2/Time{fam}")
    layer, params = CELLS[fam][1], recurrent_params(c)
    state = (jnp.asarray(c.h0), jnp.asarray(c.c0)) if fam == "LSTM" else jnp.asarray(c.h0)
    (hs, last), cache = layer.forward(params, jnp.asarray(c.xs), state)
    grads, (dxs, dstate0) = layer.backward(params, cache, jnp.asarray(c.dhs))
    check(hs, c.hs, "hs")
    if fam == "LSTM":
        check(last[0], c.h_last, "last h")
        check(last[1], c.c_last, "last c")
        check(dstate0[0], c.dh0, "dh0")
    else:
        check(last, c.h_last, "last h")
        check(dstate0, c.dh0, "dh0")
    check(dxs, c.dxs, "dxs")
    check_tree(grads, {"Wx": c.dWx, "Wh": c.dWh, "b": c.db}, "grads")


@compares("dlfs2/TimeEmbedding")
def test_time_embedding():
    c = case("dlfs2/TimeEmbedding")
    params = {"W": jnp.asarray(c.W)}
    out, cache = FL.time_embedding.forward(params, jnp.asarray(c.xs))
    grads, _ = FL.time_embedding.backward(params, cache, jnp.asarray(c.dout))
    check(out, c.out, "out")
    check(grads["W"], c.dW, "dW")


@compares("dlfs2/TimeAffine")
def test_time_affine():
    c = case("dlfs2/TimeAffine")
    params = {"W": jnp.asarray(c.W), "b": jnp.asarray(c.b)}
    out, cache = FL.time_affine.forward(params, jnp.asarray(c.xs))
    grads, dxs = FL.time_affine.backward(params, cache, jnp.asarray(c.dout))
    check(out, c.out, "out")
    check(dxs, c.dxs, "dxs")
    check_tree(grads, {"W": c.dW, "b": c.db}, "grads")


@compares("dlfs2/TimeSoftmaxWithLoss")
def test_time_softmax_with_loss():
    """DLFS2's TimeSoftmaxWithLoss takes log(softmax) without the 1e-7: the same loss to rounding."""
    c = case("dlfs2/TimeSoftmaxWithLoss")
    loss, cache = FL.time_softmax_with_loss.forward({}, jnp.asarray(c.xs), jnp.asarray(c.ts))
    check(loss, c.loss, "loss")
    for tag, dout in (("", 1.0), ("_dout", 0.5)):
        _, dxs = FL.time_softmax_with_loss.backward({}, cache, dout)
        check(dxs, c[f"dxs{tag}"], f"dxs at dout {dout}")


@compares("dlfs2/TimeDropout_0.5", "dlfs2/TimeDropout_0.3")
@pytest.mark.parametrize("ratio", [0.5, 0.3])
def test_time_dropout(ratio, monkeypatch):
    """DLFS2's TimeDropout is inverted dropout: kept units / (1 - ratio) in training, identity at test."""
    c = case(f"dlfs2/TimeDropout_{ratio}")
    with book_masks(monkeypatch, [c.kept], ratio):
        ys, cache = FL.time_dropout.forward({}, jnp.asarray(c.xs), key=jax.random.key(0), drop_rate=ratio)
    _, dxs = FL.time_dropout.backward({}, cache, jnp.asarray(c.dout))
    ys_test, _ = FL.time_dropout.forward({}, jnp.asarray(c.xs), drop_rate=ratio, train=False)
    check(cache, c.mask, "mask")
    check(ys, c.ys, "ys")
    check(dxs, c.dxs, "dxs")
    check(ys_test, c.ys_test, "ys (test)")


# ================================================================================================
# DLFS2 SimpleRnnlm, Rnnlm, BetterRnnlm
# ================================================================================================


def lm_grads_list(grads: dict, names: list[str]) -> list:
    """fnn's LM grads in the book's params order."""
    out = [grads["embed"]["W"]]
    for n in names:
        out += [grads[n]["Wx"], grads[n]["Wh"], grads[n]["b"]]
    return out + ([grads["affine"]["W"]] if "W" in grads["affine"] else []) + [grads["affine"]["b"]]


def check_lm(model, params, state, xs, ts, loss, grads, names, rtol=RTOL, key=None):
    """manual_grad and jax.grad(loss) against the book's loss and grads list; returns the new state."""
    value, g, new_state = jit(lambda p: model.manual_grad(p, state, xs, ts, key=key))(params)
    auto = jit(jax.grad(lambda p: model.loss(p, state, xs, ts, key=key)[0]))(params)
    assert float(value) == pytest.approx(float(loss), rel=rtol)
    for i, (mine, theirs) in enumerate(zip(lm_grads_list(g, names), grads, strict=True)):
        check(mine, theirs, f"manual_grad, grads[{i}]", rtol)
    for i, (mine, theirs) in enumerate(zip(lm_grads_list(auto, names), grads, strict=True)):
        check(mine, theirs, f"jax.grad, grads[{i}]", rtol)
    return new_state


@compares("dlfs2/SimpleRnnlm")
def test_simple_rnnlm():
    c = case("dlfs2/SimpleRnnlm")
    w = [jnp.asarray(c[f"param{i}"]) for i in range(6)]
    params = {"embed": {"W": w[0]}, "rnn": {"Wx": w[1], "Wh": w[2], "b": w[3]}, "affine": {"W": w[4], "b": w[5]}}
    V, D = c.param0.shape
    model = rnnlm.simple_rnnlm(V, D, c.param2.shape[0], dtype=F64)
    check_lm(model, params, {}, jnp.asarray(c.xs), jnp.asarray(c.ts), c.loss,
             [c[f"grad{i}"] for i in range(6)], ["rnn"])


def rnnlm_case(name, dtype):
    c = case(name)
    params = rnnlm.from_book_params([c[f"param{i}"] for i in range(6)], dtype=dtype)
    V, D = c.param0.shape
    return c, params, rnnlm.rnnlm(V, D, c.param2.shape[0], dtype=dtype)


@compares("dlfs2/Rnnlm")
def test_rnnlm_two_stateful_batches():
    """Batch 2 starts from batch 1's (h, c), as the book's stateful TimeLSTM does."""
    c, params, model = rnnlm_case("dlfs2/Rnnlm", F64)
    state = {}
    for k in (1, 2):
        state = check_lm(model, params, state, jnp.asarray(c[f"xs{k}"]), jnp.asarray(c[f"ts{k}"]), c[f"loss{k}"],
                         [c[f"grad{k}_{i}"] for i in range(6)], ["lstm"])
        check(state["lstm"][0], c[f"h{k}"], f"h after batch {k}")
        check(state["lstm"][1], c[f"c{k}"], f"c after batch {k}")


# fnn vs the book's float32 run: the largest relative error over the loss, (h, c) and the six
# gradients of both batches measured 3.5e-7 for fnn in float64 (exactly the distance between the
# book's own float64 and float32 runs: it is the book's float32 rounding) and 4.0e-7 for fnn in
# float32, about 6 units of float32's roundoff u = 2**-24 = 6e-8. The bound is 32 u.
FLOAT32_RTOL = 32 * 2.0**-24


@compares("dlfs2/Rnnlm_float32")
@pytest.mark.parametrize("dtype", [F64, jnp.float32])
def test_rnnlm_float32(dtype):
    """The book's Rnnlm in its own float32: fnn (float64 or float32) is within float32 rounding."""
    c, params, model = rnnlm_case("dlfs2/Rnnlm_float32", dtype)
    state, worst = {}, 0.0
    for k in (1, 2):
        xs, ts = jnp.asarray(c[f"xs{k}"]), jnp.asarray(c[f"ts{k}"])
        value, g, state = jit(model.manual_grad)(params, state, xs, ts)
        pairs = [(value, c[f"loss{k}"]), (state["lstm"][0], c[f"h{k}"]), (state["lstm"][1], c[f"c{k}"])]
        pairs += list(zip(lm_grads_list(g, ["lstm"]), [c[f"grad{k}_{i}"] for i in range(6)], strict=True))
        worst = max(worst, *(rel_err(a, b) for a, b in pairs))
    assert 1e-9 < worst < FLOAT32_RTOL, worst  # above float64 rounding, within float32's
    book64 = case("dlfs2/Rnnlm")  # the same weights and batches, the book's code in float64
    outputs = [k for k in book64 if k.startswith(("loss", "h", "c", "grad"))]
    assert max(rel_err(c[k], book64[k]) for k in outputs) < FLOAT32_RTOL


@compares("dlfs2/BetterRnnlm")
def test_better_rnnlm(monkeypatch):
    """Two LSTMs, three inverted dropouts (0.5) on the book's masks, weight tying; then batch 2 in
    test mode from batch 1's state."""
    c = case("dlfs2/BetterRnnlm")
    w = [c[f"param{i}"] for i in range(8)]
    params = rnnlm.from_book_params(w[:7] + [w[0].T, w[7]], dtype=F64)
    V, H = w[0].shape
    model = rnnlm.better_rnnlm(V, H, H, drop_rate=0.5, dtype=F64)
    masks = [c[f"kept{i}"] for i in range(3)]
    xs, ts, key = jnp.asarray(c.xs), jnp.asarray(c.ts), jax.random.key(3)
    with book_masks(monkeypatch, masks, 0.5):
        value, grads, state = jit(lambda p: model.manual_grad(p, {}, xs, ts, key=key))(params)
    with book_masks(monkeypatch, masks, 0.5):
        auto = jit(jax.grad(lambda p: model.loss(p, {}, xs, ts, key=key)[0]))(params)
    assert float(value) == pytest.approx(float(c.loss), rel=RTOL)
    book = [c[f"grad{i}"] for i in range(8)]
    for what, g in (("manual_grad", grads), ("jax.grad", auto)):
        for i, (mine, theirs) in enumerate(zip(lm_grads_list(g, ["lstm1", "lstm2"]), book, strict=True)):
            check(mine, theirs, f"{what}, grads[{i}] (the book's after remove_duplicate)")
    check(state["lstm1"][0], c.h1_1, "LSTM 1's h")
    check(state["lstm2"][0], c.h1_2, "LSTM 2's h")
    scores, _ = jit(lambda p: model.apply(p, state, jnp.asarray(c.xs2), train=False))(params)
    loss_test, _ = FL.time_softmax_with_loss.forward({}, scores, jnp.asarray(c.ts2))
    assert float(loss_test) == pytest.approx(float(c.loss_test), rel=RTOL)


# ================================================================================================
# DLFS2 ch07/seq2seq.py, ch07/peeky_seq2seq.py, ch08/attention_seq2seq.py
# ================================================================================================

SEQ2SEQ_NETS = {"Seq2seq": seq2seq.SEQ2SEQ, "PeekySeq2seq": seq2seq.PEEKY,
                "AttentionSeq2seq": attention_seq2seq.ATTENTION}


@compares(*(f"dlfs2/{name}" for name in SEQ2SEQ_NETS))
@pytest.mark.parametrize("name", list(SEQ2SEQ_NETS))
def test_seq2seq(name):
    """The book's weights order is fnn's leaf order; loss, gradients (manual_grad and jax.grad) and
    the greedy answers of generate."""
    c, nets = case(f"dlfs2/{name}"), SEQ2SEQ_NETS[name]
    params = seq2seq.from_book_params([c[f"param{i}"] for i in range(10)], dtype=F64)
    xs, ts = jnp.asarray(c.xs), jnp.asarray(c.ts)
    value, grads = jit(lambda p: seq2seq.manual_grad(p, xs, ts, nets))(params)
    auto = jit(jax.grad(lambda p: seq2seq.loss(p, xs, ts, nets)))(params)
    assert float(value) == pytest.approx(float(c.loss), rel=RTOL)
    book = seq2seq.from_book_params([c[f"grad{i}"] for i in range(10)], dtype=F64)
    for what, g in (("manual_grad", grads), ("jax.grad", auto)):
        for (path, mine), theirs in zip(jax.tree_util.tree_leaves_with_path(g), jax.tree_util.tree_leaves(book),
                                        strict=True):
            check(mine, theirs, f"{what} {jax.tree_util.keystr(path)}")
    ids, _ = seq2seq.generate(params, xs, ts[:, 0], ts.shape[1] - 1, nets)
    np.testing.assert_array_equal(ids, c.generated)


def test_every_recorded_case_is_compared():
    assert set(META["cases"]) == COVERED
