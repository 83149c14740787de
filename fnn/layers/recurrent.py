"""RNN, LSTM and GRU: the cells and their time-unrolled layers with hand-written BPTT (DLFS2 ch5-6).

Shapes: N batch, T time steps, D input features, H hidden units, G gate width (H for the RNN,
4H for the LSTM, 3H for the GRU).

Conventions (DLFS2 ``common/time_layers.py``; pinned by ``tests/layers/test_recurrent.py``):

* every family has ``Wx (D, G)``, ``Wh (H, G)``, ``b (G,)``; the gates' pre-activations are
  ``A = x Wx + h_prev Wh + b`` (the GRU's candidate differs, see below);
* RNN (DLFS2 §5.3.1): ``h = tanh(A)``;
* LSTM (DLFS2 §6.3): gate slices of A in the order **f, g, i, o**:
  ``f, i, o = sigmoid(.)``, ``g = tanh(.)``, ``c = f * c_prev + g * i``, ``h = o * tanh(c)``;
* GRU (DLFS2 appendix C, the ``GRU`` class of ``common/time_layers.py``): slices in the order
  **z, r, h~**; ``z = sigmoid(x Wxz + h_prev Whz + bz)``, ``r = sigmoid(x Wxr + h_prev Whr + br)``,
  ``h~ = tanh(x Wxh + (r * h_prev) Whh + bh)`` (the reset gate multiplies h_prev *before* the Whh
  matmul), ``h = (1 - z) * h_prev + z * h~`` (the update gate z weights the *new* candidate).

The recurrent carry ("state") is explicit: ``h (N, H)`` for the RNN and GRU, ``(h, c)`` for the
LSTM. A cell is ``forward(params, (x, *state)) -> (state', cache)`` and
``backward(params, cache, dstate') -> (grads, (dx, *dstate))``. A time layer is

    forward(params, xs, state=None)            -> ((hs, last_state), cache)
    backward(params, cache, dhs, dstate=None)  -> (grads, (dxs, dstate0))

``xs (N, T, D)``, ``hs (N, T, H)``. ``state=None`` starts from zeros (the book's stateless mode, and
its stateful mode after ``reset_state``); passing the previous batch's ``last_state`` is its
stateful mode (truncated BPTT). ``dstate=None`` is the book's truncation: no gradient flows in from
the future. ``dstate0`` is the gradient w.r.t. the initial state (the book's ``TimeRNN.dh``).

How the work is split, so that each piece exists once: the input projection ``x Wx + b`` of all T
steps is one `fnn.layers.core.affine` over ``(T*N, D)``, and its backward is affine's backward
(dWx, db, dxs in one matmul each); only ``h_prev Wh`` and the gate nonlinearities run step by step
inside a `lax.scan`; the reverse `lax.scan` of the BPTT returns every step's dA, and dWh is again
affine's backward over all steps at once. The single-step cells are the same pieces with T = 1.
The activations' backward is that of `fnn.layers.core.sigmoid` / `tanh`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from fnn._checks import check_floating, check_ndim, check_positive_int
from fnn.layers import core as L
from fnn.layers.core import Layer, Params

__all__ = [
    "FAMILIES", "GRU", "LSTM", "RNN", "gru_cell", "init", "lstm_cell", "rnn_cell", "time_gru", "time_layer",
    "time_lstm", "time_rnn", "zero_state",
]


def _act(layer: Layer, x: Array) -> Array:
    return layer.forward(L.NO_PARAMS, x)[0]


def _dact(layer: Layer, y: Array, dout: Array) -> Array:
    """The activation's backward (cache = its output y): dout * f'(x)."""
    return layer.backward(L.NO_PARAMS, y, dout)[1]


def _matmul_backward(W: Array, x: Array, dout: Array) -> tuple[Array, Array]:
    """(dW, dx) of ``y = x W`` by affine's backward (DLFS1 §5.6.2); the unused db is dead code."""
    grads, dx = L.affine.backward({"W": W}, x, dout)
    return grads["W"], dx


# --------------------------------------------------------------------------------------------
# One time step after the input projection: xa = x Wx + b (N, G) and the carry -> new carry.
# step(Wh, xa, state) -> (state', cache); step_backward(Wh, cache, dstate') -> (dA, dstate)
# wh_grad(Wh, cache, dA) -> dWh, with caches of any leading shape flattened to rows.
# --------------------------------------------------------------------------------------------


def _rnn_step(Wh, xa, h_prev):
    """h = tanh(h_prev Wh + xa) (DLFS2 §5.3.1, RNN.forward)."""
    h = _act(L.tanh, xa + h_prev @ Wh)
    return h, (h_prev, h)


def _rnn_step_backward(Wh, cache, dh):
    """dA = dh (1 - h^2); dh_prev = dA Wh^T (DLFS2 §5.3.1, Figure 5-20)."""
    h_prev, h = cache
    dA = _dact(L.tanh, h, dh)
    return dA, _matmul_backward(Wh, h_prev, dA)[1]


def _rnn_dWh(Wh, cache, dA):
    return _matmul_backward(Wh, cache[0], dA)[0]


def _lstm_step(Wh, xa, state):
    """Gates f, g, i, o from A = xa + h_prev Wh; c = f c_prev + g i; h = o tanh(c) (DLFS2 §6.3)."""
    h_prev, c_prev = state
    H = h_prev.shape[-1]
    A = xa + h_prev @ Wh  # (N, 4H)
    f = _act(L.sigmoid, A[:, :H])
    g = _act(L.tanh, A[:, H:2 * H])
    i = _act(L.sigmoid, A[:, 2 * H:3 * H])
    o = _act(L.sigmoid, A[:, 3 * H:])
    c = f * c_prev + g * i
    tanh_c = _act(L.tanh, c)
    h = o * tanh_c
    return (h, c), (h_prev, c_prev, f, g, i, o, tanh_c)


def _lstm_step_backward(Wh, cache, dstate):
    """The LSTM's backward (DLFS2 §6.3.3, Figure 6-29): ds = dc + tanh'(c) dh o, then each gate."""
    h_prev, c_prev, f, g, i, o, tanh_c = cache
    dh, dc = dstate
    ds = dc + _dact(L.tanh, tanh_c, dh * o)
    dA = jnp.concatenate([_dact(L.sigmoid, f, ds * c_prev),   # df
                          _dact(L.tanh, g, ds * i),           # dg
                          _dact(L.sigmoid, i, ds * g),        # di
                          _dact(L.sigmoid, o, dh * tanh_c)],  # do
                         axis=-1)  # (N, 4H)
    return dA, (_matmul_backward(Wh, h_prev, dA)[1], ds * f)


def _lstm_dWh(Wh, cache, dA):
    return _matmul_backward(Wh, cache[0], dA)[0]


def _gru_step(Wh, xa, h_prev):
    """z, r from h_prev; h~ from r * h_prev; h = (1 - z) h_prev + z h~ (DLFS2 appendix C, GRU)."""
    H = h_prev.shape[-1]
    zr = xa[:, :2 * H] + h_prev @ Wh[:, :2 * H]  # (N, 2H)
    z = _act(L.sigmoid, zr[:, :H])
    r = _act(L.sigmoid, zr[:, H:])
    rh = r * h_prev
    h_hat = _act(L.tanh, xa[:, 2 * H:] + rh @ Wh[:, 2 * H:])
    h = (1 - z) * h_prev + z * h_hat
    return h, (h_prev, z, r, rh, h_hat)


def _gru_step_backward(Wh, cache, dh):
    """The GRU's backward (DLFS2 appendix C, ``GRU.backward``), gate by gate."""
    h_prev, z, r, rh, h_hat = cache
    H = h_prev.shape[-1]
    dt_h = _dact(L.tanh, h_hat, dh * z)
    _, drh = _matmul_backward(Wh[:, 2 * H:], rh, dt_h)
    dt_z = _dact(L.sigmoid, z, dh * (h_hat - h_prev))
    dt_r = _dact(L.sigmoid, r, drh * h_prev)
    dt_zr = jnp.concatenate([dt_z, dt_r], axis=-1)  # (N, 2H)
    _, dh_zr = _matmul_backward(Wh[:, :2 * H], h_prev, dt_zr)
    dh_prev = dh * (1 - z) + r * drh + dh_zr
    return jnp.concatenate([dt_zr, dt_h], axis=-1), dh_prev


def _gru_dWh(Wh, cache, dA):
    h_prev, _, _, rh, _ = cache
    H = h_prev.shape[-1]
    dW_zr = _matmul_backward(Wh[:, :2 * H], h_prev, dA[:, :2 * H])[0]
    dW_h = _matmul_backward(Wh[:, 2 * H:], rh, dA[:, 2 * H:])[0]
    return jnp.concatenate([dW_zr, dW_h], axis=-1)


class _Family(NamedTuple):
    name: str
    gates: int          # G = gates * H
    lstm: bool          # carry is (h, c) instead of h
    step: Callable[..., Any]
    step_backward: Callable[..., Any]
    wh_grad: Callable[..., Any]


RNN = _Family("rnn", 1, False, _rnn_step, _rnn_step_backward, _rnn_dWh)
LSTM = _Family("lstm", 4, True, _lstm_step, _lstm_step_backward, _lstm_dWh)
GRU = _Family("gru", 3, False, _gru_step, _gru_step_backward, _gru_dWh)
FAMILIES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def _check_params(fn: str, fam: _Family, params: Params) -> tuple[int, int]:
    """D, H from Wx (D, G), Wh (H, G), b (G,) with G = gates * H; errors name what differs."""
    for k in ("Wx", "Wh", "b"):
        if k not in params:
            raise ValueError(f"{fn}: params has keys {sorted(params)}, expected Wx, Wh, b")
    Wx, Wh, b = params["Wx"], params["Wh"], params["b"]
    if Wh.ndim != 2 or Wh.shape[1] != fam.gates * Wh.shape[0]:
        raise ValueError(f"{fn}: Wh has shape {tuple(Wh.shape)}, expected (H, {fam.gates}*H)")
    H = Wh.shape[0]
    if Wx.ndim != 2 or Wx.shape[1] != fam.gates * H:
        raise ValueError(f"{fn}: Wx has shape {tuple(Wx.shape)}, expected (D, {fam.gates * H})")
    if tuple(b.shape) != (fam.gates * H,):
        raise ValueError(f"{fn}: b has shape {tuple(b.shape)}, expected ({fam.gates * H},)")
    return Wx.shape[0], H


def _check_state(fn: str, fam: _Family, state, N: int, H: int, dtype):
    if state is None:
        h = jnp.zeros((N, H), dtype)
        return (h, h) if fam.lstm else h
    parts = tuple(state) if fam.lstm else (state,)
    if fam.lstm and len(parts) != 2:
        raise ValueError(f"{fn}: state must be the pair (h, c), got {len(parts)} arrays")
    for name, s in zip(("h", "c"), parts, strict=False):
        if tuple(s.shape) != (N, H):
            raise ValueError(f"{fn}: state {name} has shape {tuple(s.shape)}, expected ({N}, {H})")
    return parts if fam.lstm else parts[0]


# --------------------------------------------------------------------------------------------
# Single-step cells (DLFS2 §5.3.1 RNN, §6.3 LSTM, appendix C GRU)
# --------------------------------------------------------------------------------------------


def _make_cell(fam: _Family) -> Layer:
    fn = f"{fam.name}_cell"

    def forward(params: Params, inputs):
        x, *state = inputs
        D, H = _check_params(f"{fn}.forward", fam, params)
        check_ndim(f"{fn}.forward", "x", x, 2, "(N, D)")
        if x.shape[1] != D:
            raise ValueError(f"{fn}.forward: x has shape {tuple(x.shape)}, expected (N, {D})")
        state = _check_state(f"{fn}.forward", fam, tuple(state) if fam.lstm else state[0],
                             x.shape[0], H, x.dtype)
        xa, x_cache = L.affine.forward({"W": params["Wx"], "b": params["b"]}, x)  # (N, G)
        new_state, step_cache = fam.step(params["Wh"], xa, state)
        return new_state, (x_cache, step_cache)

    def backward(params: Params, cache, dout):
        x_cache, step_cache = cache
        dA, dstate = fam.step_backward(params["Wh"], step_cache, tuple(dout) if fam.lstm else dout)
        gx, dx = L.affine.backward({"W": params["Wx"]}, x_cache, dA)
        grads = {"Wx": gx["W"], "Wh": fam.wh_grad(params["Wh"], step_cache, dA), "b": gx["b"]}
        return grads, (dx, *dstate) if fam.lstm else (dx, dstate)

    forward.__doc__ = (f"One {fam.name.upper()} step: forward(params, (x, *state)) -> (state', "
                       f"cache); x (N, D), state as in the module docstring.")
    backward.__doc__ = f"The {fam.name.upper()} step's hand-written backward -> (grads, (dx, *dstate))."
    return Layer(forward, backward)


# RNN: h = tanh(h_prev Wh + x Wx + b) (DLFS2 §5.3.1). forward(params, (x, h_prev)) -> (h, cache).
rnn_cell = _make_cell(RNN)
# LSTM (DLFS2 §6.3), gates f, g, i, o. forward(params, (x, h_prev, c_prev)) -> ((h, c), cache).
lstm_cell = _make_cell(LSTM)
# GRU (DLFS2 appendix C), gates z, r, h~. forward(params, (x, h_prev)) -> (h, cache).
gru_cell = _make_cell(GRU)


# --------------------------------------------------------------------------------------------
# Time layers: lax.scan forward, reverse lax.scan BPTT (DLFS2 §5.3.2, §5.4 TimeRNN; §6.3 TimeLSTM)
# --------------------------------------------------------------------------------------------


def _make_time(fam: _Family) -> Layer:
    fn = f"time_{fam.name}"

    def forward(params: Params, xs: Array, state=None):
        D, H = _check_params(f"{fn}.forward", fam, params)
        check_ndim(f"{fn}.forward", "xs", xs, 3, "(N, T, D)")
        check_floating(f"{fn}.forward", "xs", xs)
        N, T, Dx = xs.shape
        if T == 0 or N == 0:
            raise ValueError(f"{fn}.forward: xs has shape {tuple(xs.shape)}, expected N >= 1 "
                             f"and a sequence length T >= 1")
        if Dx != D:
            raise ValueError(f"{fn}.forward: xs has shape {tuple(xs.shape)}, expected "
                             f"(N, T, {D}) (D = Wx.shape[0])")
        state = _check_state(f"{fn}.forward", fam, state, N, H, xs.dtype)
        x_tm = xs.swapaxes(0, 1).reshape(T * N, D)  # time-major rows (T*N, D)
        xa, _ = L.affine.forward({"W": params["Wx"], "b": params["b"]}, x_tm)
        xa = xa.reshape(T, N, fam.gates * H)

        def body(carry, xa_t):
            carry, cache = fam.step(params["Wh"], xa_t, carry)
            return carry, (carry[0] if fam.lstm else carry, cache)

        last, (hs, caches) = jax.lax.scan(body, state, xa)  # hs (T, N, H)
        return (hs.swapaxes(0, 1), last), (x_tm, caches)

    def backward(params: Params, cache, dhs: Array, dstate=None):
        x_tm, caches = cache
        T, N = jax.tree_util.tree_leaves(caches)[0].shape[:2]
        D, H = x_tm.shape[1], params["Wh"].shape[0]
        if tuple(dhs.shape) != (N, T, H):
            raise ValueError(f"{fn}.backward: dhs has shape {tuple(dhs.shape)}, expected "
                             f"({N}, {T}, {H})")
        zeros = jnp.zeros((N, H), dhs.dtype)
        if dstate is None:  # truncated BPTT: nothing flows back from the next batch
            dstate = (zeros, zeros) if fam.lstm else zeros
        elif fam.lstm:
            dstate = tuple(dstate)

        def body(dcarry, inputs):
            dh_t, cache_t = inputs
            dcarry = (dcarry[0] + dh_t, dcarry[1]) if fam.lstm else dcarry + dh_t
            dA, dcarry = fam.step_backward(params["Wh"], cache_t, dcarry)
            return dcarry, dA

        dstate0, dA = jax.lax.scan(body, dstate, (dhs.swapaxes(0, 1), caches), reverse=True)
        dA = dA.reshape(T * N, -1)  # (T*N, G)
        flat = jax.tree_util.tree_map(lambda a: a.reshape(T * N, *a.shape[2:]), caches)
        gx, dx = L.affine.backward({"W": params["Wx"]}, x_tm, dA)
        grads = {"Wx": gx["W"], "Wh": fam.wh_grad(params["Wh"], flat, dA), "b": gx["b"]}
        return grads, (dx.reshape(T, N, D).swapaxes(0, 1), dstate0)

    forward.__doc__ = (f"Time{fam.name.upper()} forward: xs (N, T, D), state (see module) -> "
                       f"((hs (N, T, H), last_state), cache); one lax.scan over T.")
    backward.__doc__ = (f"Time{fam.name.upper()} BPTT: dhs (N, T, H), dstate (or None) -> "
                        f"(grads, (dxs (N, T, D), dstate0)); one reverse lax.scan over T.")
    return Layer(forward, backward)


# TimeRNN (DLFS2 §5.3.2): T RNN steps, hand-written BPTT.
time_rnn = _make_time(RNN)
# TimeLSTM (DLFS2 §6.3.4): T LSTM steps (gates f, g, i, o), hand-written BPTT.
time_lstm = _make_time(LSTM)
# TimeGRU (DLFS2 appendix C): T GRU steps (gates z, r, h~), hand-written BPTT.
time_gru = _make_time(GRU)


def init(key: Array, family: str, input_size: int, hidden_size: int, *,
         dtype=jnp.float32) -> Params:
    """Wx (D, G) ~ N(0, 1/D), Wh (H, G) ~ N(0, 1/H), b = 0: the book's Xavier init (DLFS2 §5.5.1)."""
    if family not in FAMILIES:
        raise ValueError(f"recurrent.init: family is {family!r}, expected one of {sorted(FAMILIES)}")
    input_size = check_positive_int("recurrent.init", "input_size", input_size)
    hidden_size = check_positive_int("recurrent.init", "hidden_size", hidden_size)
    G = FAMILIES[family].gates * hidden_size
    kx, kh = jax.random.split(key)
    return {"Wx": jax.random.normal(kx, (input_size, G), dtype) / jnp.sqrt(input_size).astype(dtype),
            "Wh": jax.random.normal(kh, (hidden_size, G), dtype) / jnp.sqrt(hidden_size).astype(dtype),
            "b": jnp.zeros((G,), dtype)}


def time_layer(family: str) -> Layer:
    """`time_rnn`, `time_lstm` or `time_gru` by name."""
    if family not in FAMILIES:
        raise ValueError(f"time_layer: family is {family!r}, expected one of {sorted(FAMILIES)}")
    return {"rnn": time_rnn, "lstm": time_lstm, "gru": time_gru}[family]


def zero_state(family: str, batch_size: int, hidden_size: int, dtype=jnp.float32):
    """The reset carry: h (N, H) zeros, or (h, c) for the LSTM (the book's ``reset_state``)."""
    h = jnp.zeros((batch_size, hidden_size), dtype)
    return (h, h) if FAMILIES[family].lstm else h
