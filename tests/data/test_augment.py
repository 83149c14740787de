"""Data augmentation (DLFS1 §8.1.2): identity, exact shifts and rotations, randomness, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.data import augment as A


def images(N=3, C=2, H=9, W=9, seed=0):
    return jnp.asarray(np.random.default_rng(seed).random((N, C, H, W)))


def test_no_transform_is_the_identity():
    x = images()
    y = jax.jit(lambda k, x: A.augment(k, x, max_shift=0, max_degrees=0, crop_scale=(1, 1)))(
        jax.random.key(0), x)
    np.testing.assert_allclose(y, x, atol=1e-12)


def test_warp_shifts_by_whole_pixels_and_rotates_by_90_degrees_exactly():
    x = images(N=2)
    eye = jnp.broadcast_to(jnp.eye(2), (2, 2, 2))
    shifted = A.warp(x, eye, jnp.array([[-1.0, 2.0], [0.0, 0.0]]))  # image 0: down 1, left 2
    np.testing.assert_allclose(shifted[0, :, 1:, :-2], x[0, :, :-1, 2:], atol=1e-12)
    np.testing.assert_allclose(shifted[0, :, 0, :], 0.0)
    np.testing.assert_allclose(shifted[1], x[1], atol=1e-12)
    # rotating 90 degrees about the centre: source (r, c) = (c, 8 - r) is np.rot90 (anticlockwise)
    R = jnp.broadcast_to(jnp.array([[0.0, 1.0], [-1.0, 0.0]]), (2, 2, 2))
    rotated = A.warp(x, R, jnp.broadcast_to(jnp.array([0.0, 8.0]), (2, 2)))
    np.testing.assert_allclose(rotated, np.rot90(np.asarray(x), k=1, axes=(2, 3)), atol=1e-12)


def test_augment_is_random_per_image_keyed_and_keeps_shape_and_dtype():
    x = jnp.broadcast_to(images(N=1, C=1), (4, 1, 9, 9)).astype(jnp.float32)
    f = jax.jit(lambda k: A.augment(k, x, max_shift=2, max_degrees=15, crop_scale=(0.8, 1.0)))
    a, b, a2 = f(jax.random.key(0)), f(jax.random.key(1)), f(jax.random.key(0))
    assert a.shape == x.shape and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, a2)
    assert not np.allclose(a, b)
    assert not np.allclose(a[0], a[1])  # each image its own transform


def test_small_rotation_moves_mass_little():
    x = jnp.zeros((1, 1, 28, 28)).at[:, :, 10:18, 12:16].set(1.0)
    y = jax.jit(lambda k, x: A.augment(k, x, max_shift=0, max_degrees=10, crop_scale=(1, 1)))(
        jax.random.key(3), x)
    assert abs(float(y.sum()) - float(x.sum())) < 0.05 * float(x.sum())
    assert math.isfinite(float(y.max())) and float(y.max()) <= 1.0 + 1e-9


def test_errors():
    x = images()
    with pytest.raises(ValueError, match=r"augment: crop_scale is \(0.5, 1.5\), expected"):
        A.augment(jax.random.key(0), x, crop_scale=(0.5, 1.5))
    with pytest.raises(ValueError, match=r"augment: x needs rank 4"):
        A.augment(jax.random.key(0), x[0])
    with pytest.raises(TypeError, match=r"augment: x has dtype int32"):
        A.augment(jax.random.key(0), x.astype(jnp.int32))
    with pytest.raises(ValueError, match=r"warp: A has shape \(2, 2\)"):
        A.warp(x, jnp.eye(2), jnp.zeros((3, 2)))
