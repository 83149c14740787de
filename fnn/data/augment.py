"""Data augmentation as jax ops on a batch: random shifts, small rotations, crops (DLFS1 §8.1.2).

DLFS1 §8.1.2 enlarges the training set by transforming its images a little: shifting them,
rotating them slightly, cropping and rescaling them. Here each image of a batch x (N, C, H, W)
gets its own random transform, drawn from a `jax.random` key, all in one jitted computation:

    source pixel = s R(theta) (p - c) + c + o - d

for an output pixel p = (row, col), the image centre c, a rotation by theta in
[-max_degrees, max_degrees], a crop of relative size s in `crop_scale` at offset o (rescaled to
H x W), and a shift d of whole pixels in [-max_shift, max_shift]. Pixels are read bilinearly
(`jax.scipy.ndimage.map_coordinates`, order 1); outside the image they are 0, MNIST's background.

`fnn.models.augment.augmented(model, ...)` wraps a `Model` so that its training loss and gradients
see these augmented batches while evaluation sees the images as they are.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import Array
from jax.scipy.ndimage import map_coordinates

from fnn._checks import check_floating, check_ndim

__all__ = ["augment", "warp"]


def warp(x: Array, A: Array, b: Array) -> Array:
    """Resample every image: output pixel p reads input at ``A[n] @ p + b[n]`` (bilinear, zeros outside).

    x (N, C, H, W); A (N, 2, 2) and b (N, 2) map (row, col) of the output to the input.
    """
    check_ndim("warp", "x", x, 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    if A.shape != (N, 2, 2) or b.shape != (N, 2):
        raise ValueError(f"warp: A has shape {tuple(A.shape)} and b {tuple(b.shape)}, expected "
                         f"({N}, 2, 2) and ({N}, 2)")
    rows, cols = jnp.meshgrid(jnp.arange(H, dtype=A.dtype), jnp.arange(W, dtype=A.dtype),
                              indexing="ij")
    grid = jnp.stack([rows.ravel(), cols.ravel()])  # (2, H*W)

    def one_image(img, A, b):  # img (C, H, W)
        src = A @ grid + b[:, None]  # (2, H*W) source coordinates
        sample = lambda ch: map_coordinates(ch, [src[0], src[1]], order=1, mode="constant",  # noqa: E731
                                            cval=0.0).reshape(H, W)
        return jax.vmap(sample)(img)

    return jax.vmap(one_image)(x, A.astype(x.dtype), b.astype(x.dtype))


def augment(key: Array, x: Array, *, max_shift: int = 2, max_degrees: float = 10.0,
            crop_scale: tuple[float, float] = (0.9, 1.0)) -> Array:
    """A random shift, rotation and crop for each image of x (N, C, H, W); same shape (DLFS1 §8.1.2).

    `max_shift` whole pixels each way; rotation uniform in [-max_degrees, max_degrees]; crop side
    uniform in `crop_scale` times the image side, at a random place, rescaled to the full size.
    ``max_shift=0, max_degrees=0, crop_scale=(1, 1)`` is the identity.
    """
    check_ndim("augment", "x", x, 4, "(N, C, H, W)")
    check_floating("augment", "x", x)
    lo, hi = crop_scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"augment: crop_scale is {crop_scale!r}, expected (lo, hi) with "
                         f"0 < lo <= hi <= 1")
    if max_shift < 0 or max_degrees < 0:
        raise ValueError(f"augment: max_shift is {max_shift!r} and max_degrees {max_degrees!r}, "
                         f"expected both >= 0")
    N, _, H, W = x.shape
    k_shift, k_rot, k_scale, k_off = jax.random.split(key, 4)
    dtype = jnp.float32 if x.dtype.itemsize < 4 else x.dtype
    d = jax.random.randint(k_shift, (N, 2), -max_shift, max_shift + 1).astype(dtype)
    theta = jax.random.uniform(k_rot, (N,), dtype, -1.0, 1.0) * math.radians(max_degrees)
    s = jax.random.uniform(k_scale, (N,), dtype, lo, hi)
    half = jnp.array([(H - 1) / 2, (W - 1) / 2], dtype)
    o = jax.random.uniform(k_off, (N, 2), dtype, -1.0, 1.0) * ((1 - s)[:, None] * half[None, :])
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    R = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)  # (N, 2, 2)
    A = s[:, None, None] * R
    b = half[None, :] - jnp.einsum("nij,j->ni", A, half) + o - d  # c - A c + o - d
    return warp(x, A, b).astype(x.dtype)
