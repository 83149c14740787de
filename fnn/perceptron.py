"""Perceptrons: the logic gates of DLFS1 chapter 2, XOR as two layers, and the perceptron rule.

A perceptron with weights ``w`` (2,) and bias ``b`` outputs (DLFS1 §2.3.2, equation 2.2)

    y = 1 if w · x + b > 0 else 0

The book sets the weights by hand (§2.3.1): AND (0.5, 0.5, -0.7), NAND (-0.5, -0.5, 0.7),
OR (0.5, 0.5, -0.2). One perceptron draws one straight line, so it cannot be XOR (§2.4); two layers
can: XOR(x1, x2) = AND(NAND(x1, x2), OR(x1, x2)) (§2.5.2). The book never *learns* these weights;
`perceptron_learn` adds Rosenblatt's rule, which finds them for AND, NAND and OR and never for XOR.

Shapes: ``x`` is one input (2,) or a batch (N, 2) of 0/1 (or real) values; gates return int32 0/1
of shape ``x.shape[:-1]``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from fnn._checks import check_floating, check_positive_int

__all__ = [
    "AND", "GATES", "INPUTS", "NAND", "OR", "XOR", "gate_params", "Perceptron", "perceptron", "perceptron_learn",
    "truth_table",
]


class Perceptron(NamedTuple):
    """A perceptron's parameters: weights ``w`` (D,) and bias ``b`` () (DLFS1 §2.3.2)."""

    w: Array  # (D,)
    b: Array  # ()


def gate_params(name: str) -> Perceptron:
    """The book's hand-set weights of the gate `name`, "AND", "NAND" or "OR" (DLFS1 §2.3.1, §2.3.3)."""
    if name not in _GATES:
        raise ValueError(f"gate_params: name is {name!r}, expected one of {sorted(_GATES)}")
    w, b = _GATES[name]
    return Perceptron(jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32))


_GATES = {"AND": ((0.5, 0.5), -0.7), "NAND": ((-0.5, -0.5), 0.7), "OR": ((0.5, 0.5), -0.2)}


def perceptron(params: Perceptron, x: Array) -> Array:
    """y = 1 if w · x + b > 0 else 0 (DLFS1 §2.3.2, equation 2.2); x (..., D) -> y (...,) int32."""
    x = jnp.asarray(x)
    w, b = params.w, params.b
    if x.ndim < 1 or x.shape[-1] != w.shape[0]:
        raise ValueError(f"perceptron: x has shape {tuple(x.shape)}, expected (..., {w.shape[0]}) "
                         f"(the last axis must match w.shape[0])")
    return (x @ w + b > 0).astype(jnp.int32)  # (...,)


def _stack(x1, x2) -> Array:
    x1, x2 = jnp.asarray(x1), jnp.asarray(x2)
    if x1.shape != x2.shape:
        raise ValueError(f"gate: x1 has shape {x1.shape} and x2 has shape {x2.shape}, expected equal "
                         f"shapes")
    return jnp.stack([x1, x2], axis=-1).astype(jnp.float32)  # (..., 2)


def AND(x1, x2) -> Array:
    """AND gate: w = (0.5, 0.5), b = -0.7 (DLFS1 §2.3.1, §2.3.3). x1, x2 scalars or equal shapes."""
    return perceptron(gate_params("AND"), _stack(x1, x2))


def NAND(x1, x2) -> Array:
    """NAND gate: w = (-0.5, -0.5), b = 0.7 (DLFS1 §2.3.3)."""
    return perceptron(gate_params("NAND"), _stack(x1, x2))


def OR(x1, x2) -> Array:
    """OR gate: w = (0.5, 0.5), b = -0.2 (DLFS1 §2.3.3)."""
    return perceptron(gate_params("OR"), _stack(x1, x2))


def XOR(x1, x2) -> Array:
    """XOR as a two-layer perceptron: s1 = NAND, s2 = OR, y = AND(s1, s2) (DLFS1 §2.5.2, Fig. 2-13)."""
    return AND(NAND(x1, x2), OR(x1, x2))


GATES = {"AND": AND, "NAND": NAND, "OR": OR, "XOR": XOR}
# The four inputs in the book's order: (0, 0), (1, 0), (0, 1), (1, 1) (DLFS1 §2.1).
INPUTS = jnp.array([[0, 0], [1, 0], [0, 1], [1, 1]], jnp.int32)


def truth_table(name: str) -> Array:
    """The outputs of gate `name` on `INPUTS` (DLFS1 §2.2, Fig. 2-2 to 2-4; XOR: §2.4, Fig. 2-5), (4,)."""
    if name not in GATES:
        raise ValueError(f"truth_table: name is {name!r}, expected one of {sorted(GATES)}")
    return GATES[name](INPUTS[:, 0], INPUTS[:, 1])


def perceptron_learn(x: Array, t: Array, *, lr: float = 0.1, epochs: int = 20,
                     init: Perceptron | None = None) -> tuple[Perceptron, Array]:
    """Learn a perceptron with Rosenblatt's rule, one sample at a time (DLFS1 §2.3 model; rule:
    Rosenblatt 1958):

        y = 1 if w · x_n + b > 0 else 0;   w <- w + lr (t_n - y) x_n;   b <- b + lr (t_n - y)

    x (N, D) floating, t (N,) 0/1 targets; samples are visited in order, `epochs` times, as one
    `lax.scan` over epochs of a `lax.scan` over samples. `init` defaults to zeros.
    Returns the final parameters and the number of misclassified samples seen in each epoch (epochs,):
    it reaches 0 when the data are linearly separable (AND, NAND, OR) and never for XOR.

    References: F. Rosenblatt, "The perceptron", Psychological Review 65(6), 1958.
    """
    x = jnp.asarray(x)
    t = jnp.asarray(t)
    check_floating("perceptron_learn", "x", x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"perceptron_learn: x needs shape (N, D) with N >= 1, but has shape "
                         f"{tuple(x.shape)}")
    if t.shape != x.shape[:1]:
        raise ValueError(f"perceptron_learn: t has shape {tuple(t.shape)}, expected ({x.shape[0]},) "
                         f"to match x {tuple(x.shape)}")
    epochs = check_positive_int("perceptron_learn", "epochs", epochs)
    if init is None:
        init = Perceptron(jnp.zeros(x.shape[1], x.dtype), jnp.zeros((), x.dtype))
    elif init.w.shape != (x.shape[1],) or jnp.shape(init.b) != ():
        raise ValueError(f"perceptron_learn: init has w {tuple(init.w.shape)} and b "
                         f"{tuple(jnp.shape(init.b))}, expected w ({x.shape[1]},) and b ()")
    t = t.astype(x.dtype)

    def sample(params, xt):
        xn, tn = xt
        err = tn - (jnp.dot(xn, params.w) + params.b > 0).astype(x.dtype)  # 0 or +-1
        return Perceptron(params.w + lr * err * xn, params.b + lr * err), err != 0

    def epoch(params, _):
        params, wrong = jax.lax.scan(sample, params, (x, t))
        return params, jnp.sum(wrong)

    params = Perceptron(jnp.asarray(init.w, x.dtype), jnp.asarray(init.b, x.dtype))
    return jax.lax.scan(epoch, params, None, length=epochs)
