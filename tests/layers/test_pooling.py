"""Pooling, max and average (DLFS1 §7.3, §7.4.4): definition, the book's argmax backward, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.gradient import gradient_check, max_error
from fnn.layers import pooling

# (N, C, H, W, PH, PW, stride, pad)
CONFIGS = [
    (2, 3, 6, 6, 2, 2, 2, 0),  # the book's 2x2, stride 2
    (2, 2, 7, 5, 2, 2, 2, 0),  # odd sizes: the last row / column is left out
    (1, 2, 7, 7, 3, 3, 2, 1),  # overlapping windows, padding
    (2, 1, 5, 6, 3, 2, 1, 0),  # non-square window, stride 1
]
MODES = ["max", "avg"]


def direct_pool(x, PH, PW, stride, pad, mode):
    """Pooling by its definition, a loop over output positions (NumPy, zero padding as im2col)."""
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pad - PH) // stride + 1, (W + 2 * pad - PW) // stride + 1
    xp = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    reduce = np.max if mode == "max" else np.mean
    y = np.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            y[:, :, i, j] = reduce(xp[:, :, i * stride:i * stride + PH, j * stride:j * stride + PW],
                                   axis=(2, 3))
    return y


def make(cfg, seed=0):
    """x (N, C, H, W), continuous so that no window has a tie, and output weights R (N, C, OH, OW)."""
    N, C, H, W, PH, PW, stride, pad = cfg
    rng = np.random.default_rng(seed)
    OH, OW = (H + 2 * pad - PH) // stride + 1, (W + 2 * pad - PW) // stride + 1
    return jnp.asarray(rng.normal(size=(N, C, H, W))), jnp.asarray(rng.normal(size=(N, C, OH, OW)))


def kwargs(cfg, mode):
    return {"pool_h": cfg[4], "pool_w": cfg[5], "stride": cfg[6], "pad": cfg[7], "mode": mode}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cfg,jit", [(c, i % 2 == 1) for i, c in enumerate(CONFIGS)])
def test_forward_matches_definition(cfg, jit, mode):
    x, _ = make(cfg)
    kw = kwargs(cfg, mode)
    layer = lambda x: pooling.pooling.forward({}, x, **kw)[0]  # noqa: E731
    fast = lambda x: pooling.pool2d(x, **kw)  # noqa: E731
    if jit:
        layer, fast = jax.jit(layer), jax.jit(fast)
    want = direct_pool(np.asarray(x), cfg[4], cfg[5], cfg[6], cfg[7], mode)
    np.testing.assert_allclose(layer(x), want, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(fast(x), want, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cfg", CONFIGS)
def test_three_way_gradient(cfg, mode):
    x, R = make(cfg)
    kw = kwargs(cfg, mode)

    @jax.jit
    def f(x):
        return jnp.sum(pooling.pool2d(x, **kw) * R)

    @jax.jit
    def manual(x):
        _, cache = pooling.pooling.forward({}, x, **kw)
        return pooling.pooling.backward({}, cache, R)[1]

    with jax.numpy_rank_promotion("allow"):  # fnn.gradient broadcasts (n,) + (k, n)
        errors = gradient_check(manual, f, x)
    assert max_error(errors["manual_vs_autodiff"]) < 1e-7, errors
    assert max_error(errors["manual_vs_numerical"]) < 1e-5, errors


def test_max_backward_picks_the_first_maximum_like_the_books_argmax():
    x = jnp.array([[[[1.0, 3.0], [3.0, 0.0]]]])  # a tie between (0, 1) and (1, 0)
    _, cache = pooling.pooling.forward({}, x)
    _, dx = pooling.pooling.backward({}, cache, jnp.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx, [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_errors():
    x = jnp.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"pooling.forward: mode is 'min', expected one of"):
        pooling.pooling.forward({}, x, mode="min")
    with pytest.raises(ValueError, match=r"pooling.forward: window height is 4, larger than the "
                                         r"padded input height 3 \+ 2\*pad = 3"):
        pooling.pooling.forward({}, x, pool_h=4, pool_w=4)
    with pytest.raises(ValueError, match=r"explicit stride for a non-square window"):
        pooling.pool2d(x, pool_h=2, pool_w=1)
    with pytest.raises(ValueError, match=r"pool2d: x needs rank 4"):
        pooling.pool2d(x[0])
