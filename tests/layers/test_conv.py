"""im2col / col2im and Convolution (DLFS1 §7.4.3): the book's numbers, adjointness, three-way gradients,
and the lax kernel (the same equations on XLA's convolution) against the im2col kernel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fnn.gradient import gradient_check, max_error
from fnn.layers import conv
from fnn.layers import im2col as im2col_module
from tests.helpers import check_layer

# (N, C, H, W, FN, FH, FW, stride, pad): odd sizes, strides that do not divide, pads 0..2
CONFIGS = [
    (2, 3, 7, 6, 4, 3, 3, 1, 0),
    (2, 2, 7, 7, 3, 3, 3, 2, 1),
    (1, 3, 8, 5, 2, 5, 3, 1, 2),
    (2, 1, 9, 9, 2, 4, 4, 3, 1),
    (3, 2, 5, 5, 3, 1, 1, 1, 0),
    (1, 2, 6, 7, 2, 2, 3, 2, 0),
    (2, 2, 5, 6, 3, 1, 1, 1, 1),  # pad > filter - 1: the lax kernel's dx of the padded input
    (2, 5, 7, 7, 3, 3, 3, 1, 2),  # pad 2 (DeepConvNet's fourth layer), C >= 4: "auto" is lax
]


def book_im2col(x, FH, FW, stride, pad):
    """The book's common/util.py im2col, in NumPy: the reference for the layout."""
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.zeros((N, C, FH, FW, OH, OW), x.dtype)
    for y in range(FH):
        for x_ in range(FW):
            col[:, :, y, x_, :, :] = img[:, :, y:y + stride * OH:stride, x_:x_ + stride * OW:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1)


def direct_conv(x, W, b, stride, pad):
    """Convolution by its definition (DLFS1 §7.2.2): a loop over output positions, NumPy."""
    N, C, H, W_ = x.shape
    FN, _, FH, FW = W.shape
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W_ + 2 * pad - FW) // stride + 1
    xp = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    y = np.zeros((N, FN, OH, OW))
    for i in range(OH):
        for j in range(OW):
            window = xp[:, :, i * stride:i * stride + FH, j * stride:j * stride + FW]
            y[:, :, i, j] = np.einsum("nchw,fchw->nf", window, W) + b
    return y


def make(cfg, seed=0):
    """x (N, C, H, W), params {"W", "b"} and output weights R (N, FN, OH, OW), float64."""
    N, C, H, W, FN, FH, FW, stride, pad = cfg
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(N, C, H, W)))
    params = {"W": jnp.asarray(rng.normal(size=(FN, C, FH, FW)) / np.sqrt(C * FH * FW)),
              "b": jnp.asarray(rng.normal(size=(FN,)))}
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    return x, params, jnp.asarray(rng.normal(size=(N, FN, OH, OW)))


@pytest.mark.parametrize("cfg", CONFIGS)
def test_im2col_is_the_books(cfg):
    x, params, _ = make(cfg)
    _, _, _, _, _, FH, FW, stride, pad = cfg
    got = jax.jit(im2col_module.im2col, static_argnums=(1, 2, 3, 4))(x, FH, FW, stride, pad)
    np.testing.assert_array_equal(np.asarray(got), book_im2col(np.asarray(x), FH, FW, stride, pad))


@pytest.mark.parametrize("cfg,jit", [(c, i % 2 == 1) for i, c in enumerate(CONFIGS)])
def test_forward_matches_definition_and_lax(cfg, jit):
    x, params, _ = make(cfg)
    stride, pad = cfg[7], cfg[8]
    fwd = lambda p, x: conv.convolution.forward(p, x, stride=stride, pad=pad, impl="im2col")[0]  # noqa: E731
    fast = lambda p, x: conv.conv2d(x, p["W"], p["b"], stride=stride, pad=pad, impl="lax")  # noqa: E731
    if jit:
        fwd, fast = jax.jit(fwd), jax.jit(fast)
    want = direct_conv(np.asarray(x), np.asarray(params["W"]), np.asarray(params["b"]), stride, pad)
    np.testing.assert_allclose(fwd(params, x), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast(params, x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_three_way_gradient(cfg):
    """Hand-written backward vs jax.grad of the lax path vs central differences, for W, b and x."""
    x, params, R = make(cfg)
    stride, pad = cfg[7], cfg[8]
    p = {**params, "x": x}

    @jax.jit
    def f(p):  # a scalar that weights every output differently
        y = conv.conv2d(p["x"], p["W"], p["b"], stride=stride, pad=pad)
        return jnp.sum(y * R)

    @jax.jit
    def manual(p):
        _, cache = conv.convolution.forward(p, p["x"], stride=stride, pad=pad)
        grads, dx = conv.convolution.backward(p, cache, R)
        return {**grads, "x": dx}

    with jax.numpy_rank_promotion("allow"):  # fnn.gradient broadcasts (n,) + (k, n)
        errors = gradient_check(manual, f, p)
    assert max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert max_error(errors["manual_vs_numerical"]) < 1e-5, errors
    # and jax.grad through the im2col forward itself
    g_im2col = jax.jit(jax.grad(lambda p: jnp.sum(
        conv.convolution.forward(p, p["x"], stride=stride, pad=pad)[0] * R)))(p)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12),
                           g_im2col, manual(p))


@pytest.mark.parametrize("cfg,jit", [(CONFIGS[1], False), (CONFIGS[6], True), (CONFIGS[7], False)])
def test_lax_kernel_three_way(cfg, jit):
    """The layer on the lax kernel (forward, dx and dW as XLA convolutions): hand-written backward
    vs jax.vjp vs central differences (stride 2; pad > filter - 1; pad 2)."""
    x, params, _ = make(cfg)
    check_layer(conv.convolution, params, x, jit=jit, stride=cfg[7], pad=cfg[8], impl="lax")


@pytest.mark.parametrize("impl", ["lax", "auto"])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_lax_kernel_equals_im2col_kernel(cfg, impl):
    """Forward, dW, db and dx of the lax kernel, and conv2d's custom_vjp, equal the im2col kernel's."""
    x, params, R = make(cfg)
    stride, pad = cfg[7], cfg[8]

    @jax.jit
    def both(params, x):
        out = []
        for kernel in (impl, "im2col"):
            y, cache = conv.convolution.forward(params, x, stride=stride, pad=pad, impl=kernel)
            out.append((y, conv.convolution.backward(params, cache, R)))
        grad = jax.grad(lambda W, b, x: jnp.sum(
            conv.conv2d(x, W, b, stride=stride, pad=pad, impl=impl) * R), (0, 1, 2))
        gW, gb, gx = grad(params["W"], params["b"], x)
        return out, (out[0][0], ({"W": gW, "b": gb}, gx))

    (got, want), autodiff = both(params, x)
    for result in (got, autodiff):
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12),
                               result, want)


def test_lax_kernel_runs_fast_inside_scan():
    """Inside lax.scan every convolution of the custom_vjp stays on XLA's fast kernel: the optimised
    HLO holds no convolution left in a non-canonical layout (jax.grad of a plain lax.conv leaves its
    weight gradient as ``f01b_i01o->01bf``, run by a generic loop emitter ~50x slower)."""
    x = jnp.ones((2, 6, 6, 4), jnp.float32)
    W, b = jnp.ones((5, 4, 3, 3), jnp.float32), jnp.zeros(5, jnp.float32)

    def body(W, _):
        g = jax.grad(lambda W: jnp.sum(conv.conv2d_nhwc(x, W, b, pad=1, impl="lax") ** 2))(W)
        return W - 1e-3 * g, None

    hlo = jax.jit(lambda W: jax.lax.scan(body, W, None, length=2)[0]).lower(W).compile().as_text()
    assert "convolution(" not in hlo or "f01b" not in hlo, hlo


def test_choose_impl():
    assert conv.choose_impl("auto", 1) == "im2col" and conv.choose_impl("auto", 16) == "lax"
    assert conv.choose_impl("im2col", 64) == "im2col"
    with pytest.raises(ValueError, match=r"convolution: impl is 'fft', expected one of"):
        conv.choose_impl("fft", 3)


def test_nhwc_layer_is_the_nchw_layer_transposed():
    x, params, R = make(CONFIGS[1])
    y, cache = conv.convolution.forward(params, x, stride=2, pad=1)
    y2, cache2 = conv.convolution_nhwc.forward(params, x.transpose(0, 2, 3, 1), stride=2, pad=1)
    np.testing.assert_array_equal(y, y2.transpose(0, 3, 1, 2))
    (g, dx), (g2, dx2) = (conv.convolution.backward(params, cache, R),
                          conv.convolution_nhwc.backward(params, cache2, R.transpose(0, 2, 3, 1)))
    np.testing.assert_array_equal(dx, dx2.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(g["W"], g2["W"])


def test_cache_survives_jit():
    x, params, R = make(CONFIGS[1])
    fwd = jax.jit(lambda p, x: conv.convolution.forward(p, x, stride=2, pad=1))
    _, cache = fwd(params, x)
    assert cache.x_shape == (2, 7, 7, 2) and cache.stride == 2 and cache.pad == 1
    grads, dx = jax.jit(conv.convolution.backward)(params, cache, R)
    assert dx.shape == x.shape and grads["W"].shape == params["W"].shape
    fwd = jax.jit(lambda p, x: conv.convolution.forward(p, x, stride=2, pad=1, impl="lax"))
    _, cache = fwd(params, x)
    assert cache.col is None and cache.x.shape == (2, 7, 7, 2)
    grads, dx = jax.jit(conv.convolution.backward)(params, cache, R)
    assert dx.shape == x.shape and grads["W"].shape == params["W"].shape


@pytest.mark.parametrize("cfg", CONFIGS)
def test_im2col_rows_is_the_books_col_transposed(cfg):
    """The im2col kernel's column matrix (one row a tap and channel) holds the book's im2col exactly."""
    x, _, _ = make(cfg)
    N, C, H, W, _, FH, FW, stride, pad = cfg
    rows = jax.jit(im2col_module.im2col_rows, static_argnums=(1, 2, 3, 4))(x.transpose(0, 2, 3, 1), FH, FW, stride,
                                                                          pad)
    got = np.asarray(rows).reshape(FH, FW, C, -1).transpose(2, 0, 1, 3).reshape(C * FH * FW, -1).T
    np.testing.assert_array_equal(got, book_im2col(np.asarray(x), FH, FW, stride, pad))


# (im2col, col2im, x's shape, the column matrix's shape) from (N, C, H, W, FH, FW, OH, OW): the
# book's NCHW pair, and the im2col kernel's pair on NHWC images with the matrix transposed
ADJOINT_PAIRS = {
    "book": (im2col_module.im2col, im2col_module.col2im, lambda N, C, H, W, FH, FW, OH, OW: (N, C, H, W),
             lambda N, C, H, W, FH, FW, OH, OW: (N * OH * OW, C * FH * FW)),
    "rows": (im2col_module.im2col_rows, im2col_module.col2im_rows, lambda N, C, H, W, FH, FW, OH, OW: (N, H, W, C),
             lambda N, C, H, W, FH, FW, OH, OW: (FH * FW * C, N * OH * OW)),
}


@pytest.mark.parametrize("pair", ADJOINT_PAIRS)
@settings(max_examples=8, deadline=None)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 7), st.integers(1, 7),
       st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
       st.integers(0, 2**31 - 1))
def test_im2col_col2im_adjoint(pair, N, C, H, W, FH, FW, stride, pad, seed):
    """<im2col(x), y> = <x, col2im(y)>: col2im is the transpose that backprop needs (DLFS1 §7.4.3)."""
    assume(H + 2 * pad >= FH and W + 2 * pad >= FW)
    im2col, col2im, x_shape, col_shape = ADJOINT_PAIRS[pair]
    rng = np.random.default_rng(seed)
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    x = rng.normal(size=x_shape(N, C, H, W, FH, FW, OH, OW))
    y = rng.normal(size=col_shape(N, C, H, W, FH, FW, OH, OW))
    cols = jax.jit(im2col, static_argnums=(1, 2, 3, 4))(jnp.asarray(x), FH, FW, stride, pad)
    img = jax.jit(col2im, static_argnums=(1, 2, 3, 4, 5))(jnp.asarray(y), x.shape, FH, FW, stride, pad)
    lhs, rhs = np.sum(np.asarray(cols) * y), np.sum(x * np.asarray(img))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


def test_output_size_is_equation_7_1():
    assert im2col_module.output_size("f", 28, 28, 5, 5, 1, 0) == (24, 24)
    assert im2col_module.output_size("f", 4, 4, 3, 3, 1, 1) == (4, 4)  # DLFS1 Figure 7-6
    assert im2col_module.output_size("f", 7, 7, 3, 3, 2, 0) == (3, 3)  # Figure 7-7


def test_errors_name_function_argument_expected_actual():
    x, params, _ = make(CONFIGS[0])  # C=3, H=7, W=6, filters 3x3
    with pytest.raises(ValueError, match=r"convolution.forward: window height is 9, larger than "
                                         r"the padded input height 7 \+ 2\*pad = 7"):
        conv.convolution.forward({"W": jnp.zeros((4, 3, 9, 3)), "b": jnp.zeros(4)}, x)
    with pytest.raises(ValueError, match=r"convolution.forward: x has 3 channels, expected 2"):
        conv.convolution.forward({"W": jnp.zeros((4, 2, 3, 3)), "b": jnp.zeros(4)}, x)
    with pytest.raises(ValueError, match=r"b has shape \(3,\), expected \(4,\)"):
        conv.convolution.forward({"W": params["W"], "b": jnp.zeros(3)}, x)
    with pytest.raises(ValueError, match=r"x needs rank 4"):
        conv.convolution.forward(params, x[0])
    with pytest.raises(ValueError, match=r"stride is 0, expected an integer >= 1"):
        conv.convolution.forward(params, x, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: window width is 9"):
        conv.conv2d(x, jnp.zeros((4, 3, 3, 9)), jnp.zeros(4))
    with pytest.raises(ValueError, match=r"col2im: col has shape"):
        im2col_module.col2im(jnp.zeros((5, 27)), x.shape, 3, 3)
