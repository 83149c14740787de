"""The benchmark's framework references: plain JAX, Flax NNX and PyTorch eager.

Written for `scripts/bench.py`, each as a user of that framework would write the book's models
at the benchmark's sizes (``cfg`` dicts of `bench.CONFIGS`), float32, Adam lr 1e-3:

* ``jax_*``: ``jax.value_and_grad`` of a plain loss + Adam written inline (optax's ``adam``
  rule: bias-corrected moments, eps 1e-8), one ``jax.jit`` step with the (params, moments)
  buffers donated. Conv nets on ``lax.conv_general_dilated`` in the book's
  NCHW / OIHW layout and ``lax.reduce_window`` max pooling; LMs as an embedding lookup, a
  ``lax.scan`` over time (``x_t Wx + h Wh + b`` each step) and ``take_along_axis`` cross-entropy.
* ``flax_*``: ``flax.nnx`` modules (``nnx.Conv`` is NHWC, so the NCHW batch is transposed once),
  ``nnx.Optimizer`` and an ``nnx.jit`` step.
* ``torch_*``: ``torch.nn`` modules (NCHW), ``torch.optim.Adam``, eager ``backward()``.

Each builder returns ``(step, get_loss)``: ``step()`` runs one training step (for JAX, without
waiting: the harness blocks), and the LMs carry their recurrent state from step to step as the
book's stateful ``Rnnlm`` does. The conv layer specs come from `bench.cnn_layers`:
``("conv", i, stride, pad, FN, FS)``, ``("relu",)``, ``("pool",)``, ``("flatten",)``,
``("affine", i, size)``, ``("dropout", rate)``.
"""

from __future__ import annotations

import numpy as np

# ------------------------------------------------------------------------------------------------
# plain JAX: value_and_grad + inline Adam
# ------------------------------------------------------------------------------------------------


def _jax_init_dense(key, n_in, n_out):
    import jax
    import jax.numpy as jnp
    return {"W": jax.random.normal(key, (n_in, n_out)) * jnp.sqrt(2.0 / n_in), "b": jnp.zeros(n_out)}


def _jax_ce(scores, t):
    import jax
    import jax.numpy as jnp
    logp = jax.nn.log_softmax(scores)
    return -jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1))


def jax_classifier(layers, cfg, x, t):
    """Plain JAX step for the MLP (layers with only affine/relu) and the conv nets."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    keys = iter(jax.random.split(jax.random.key(0), 64))
    C, H, W = cfg.get("input_chw", (1, 1, 1))
    D = int(np.prod(x.shape[1:]))
    params = {}
    for spec in layers:
        if spec[0] == "conv":
            _, i, stride, pad, FN, FS = spec
            params[f"c{i}"] = {"W": jax.random.normal(next(keys), (FN, C, FS, FS))
                               * jnp.sqrt(2.0 / (C * FS * FS)), "b": jnp.zeros(FN)}
            C, H, W = FN, (H + 2 * pad - FS) // stride + 1, (W + 2 * pad - FS) // stride + 1
        elif spec[0] == "pool":
            H, W = H // 2, W // 2
        elif spec[0] == "flatten":
            D = C * H * W
        elif spec[0] == "affine":
            params[f"a{spec[1]}"] = _jax_init_dense(next(keys), D, spec[2])
            D = spec[2]

    def loss_fn(params, x, t, key):
        h = x
        for spec in layers:
            if spec[0] == "conv":
                _, i, stride, pad, _, _ = spec
                p = params[f"c{i}"]
                h = lax.conv_general_dilated(h, p["W"], (stride, stride), [(pad, pad), (pad, pad)],
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))
                h = h + p["b"][None, :, None, None]
            elif spec[0] == "relu":
                h = jax.nn.relu(h)
            elif spec[0] == "pool":
                h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
            elif spec[0] == "flatten":
                h = h.reshape(h.shape[0], -1)
            elif spec[0] == "affine":
                p = params[f"a{spec[1]}"]
                h = h @ p["W"] + p["b"][None, :]
            else:  # dropout, the book's (mask, no rescaling)
                key, sub = jax.random.split(key)
                h = h * jax.random.bernoulli(sub, 1 - spec[1], h.shape)
        return _jax_ce(h, t)

    return _jax_train(loss_fn, params, x, t)


def _adam(params, grads, moments, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """One Adam step (Kingma and Ba; optax.adam's rule), the moments' step count in `moments`."""
    import jax
    import jax.numpy as jnp
    m, v, count = moments
    count = count + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    m_hat, v_hat = 1 - b1 ** count, 1 - b2 ** count
    params = jax.tree.map(lambda p, m, v: p - lr * (m / m_hat) / (jnp.sqrt(v / v_hat) + eps),
                          params, m, v)
    return params, (m, v, count)


def _jax_train(loss_fn, params, x, t, carry_state=None):
    """jit(value_and_grad + inline Adam) with donated (params, moments[, state])."""
    import jax
    import jax.numpy as jnp

    x, t = jax.device_put(x), jax.device_put(t)
    key = jax.random.key(1)
    moments = (jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params),
               jnp.zeros((), jnp.float32))

    if carry_state is None:
        def _step(carry, x, t, key):
            params, moments = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, x, t, key)
            return _adam(params, grads, moments), loss
        carry = (params, moments)
    else:
        def _step(carry, x, t, key):
            params, moments, state = carry
            (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, t)
            return (*_adam(params, grads, moments), state), loss
        carry = (params, moments, carry_state)
    return jax.jit(_step, donate_argnums=0), carry, (x, t, key)


def jax_lm(cfg, xs, ts, family="lstm"):
    """Plain JAX LM step: embed, lax.scan cell, affine, cross-entropy; the carry is the state."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    V, D, H = cfg["V"], cfg["D"], cfg["H"]
    G = {"lstm": 4, "gru": 3}[family] * H
    k = jax.random.split(jax.random.key(0), 4)
    params = {"embed": jax.random.normal(k[0], (V, D)) * 0.01,
              "Wx": jax.random.normal(k[1], (D, G)) / jnp.sqrt(D),
              "Wh": jax.random.normal(k[2], (H, G)) / jnp.sqrt(H), "b": jnp.zeros(G),
              "W": jax.random.normal(k[3], (H, V)) / jnp.sqrt(H), "bo": jnp.zeros(V)}
    N = xs.shape[0]
    state = (jnp.zeros((N, H)), jnp.zeros((N, H)))

    def cell(p, carry, x):
        h, c = carry
        if family == "lstm":
            A = x @ p["Wx"] + h @ p["Wh"] + p["b"][None, :]
            f, g, i, o = jnp.split(A, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jnp.tanh(g) * jax.nn.sigmoid(i)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
        else:
            xa = x @ p["Wx"] + p["b"][None, :]
            z = jax.nn.sigmoid(xa[:, :H] + h @ p["Wh"][:, :H])
            r = jax.nn.sigmoid(xa[:, H:2 * H] + h @ p["Wh"][:, H:2 * H])
            hh = jnp.tanh(xa[:, 2 * H:] + (r * h) @ p["Wh"][:, 2 * H:])
            h = (1 - z) * h + z * hh
        return (h, c), h

    def loss_fn(p, state, xs, ts):
        emb = p["embed"][xs]                                    # (N, T, D)
        state, hs = lax.scan(lambda s, x: cell(p, s, x), jax.lax.stop_gradient(state),
                             emb.transpose(1, 0, 2))            # hs (T, N, H)
        scores = hs.transpose(1, 0, 2).reshape(-1, H) @ p["W"] + p["bo"][None, :]
        return _jax_ce(scores, ts.reshape(-1)), state

    return _jax_train(loss_fn, params, xs, ts, carry_state=state)


# ------------------------------------------------------------------------------------------------
# Flax NNX
# ------------------------------------------------------------------------------------------------


def flax_classifier(layers, cfg, x, t):
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    rngs = nnx.Rngs(0, dropout=1)
    C, H, W = cfg.get("input_chw", (1, 1, 1))
    D = int(np.prod(x.shape[1:]))
    mods = []
    for spec in layers:
        if spec[0] == "conv":
            _, _, stride, pad, FN, FS = spec
            mods.append(nnx.Conv(C, FN, (FS, FS), strides=stride, padding=[(pad, pad)] * 2, rngs=rngs))
            C, H, W = FN, (H + 2 * pad - FS) // stride + 1, (W + 2 * pad - FS) // stride + 1
        elif spec[0] == "relu":
            mods.append(nnx.relu)
        elif spec[0] == "pool":
            mods.append(lambda h: nnx.max_pool(h, (2, 2), (2, 2)))
            H, W = H // 2, W // 2
        elif spec[0] == "flatten":
            D = C * H * W
            mods.append(lambda h: h.reshape(h.shape[0], -1))
        elif spec[0] == "affine":
            mods.append(nnx.Linear(D, spec[2], rngs=rngs))
            D = spec[2]
        else:
            mods.append(nnx.Dropout(spec[1], rngs=rngs))
    model = nnx.Sequential(*mods)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    x = jnp.asarray(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x)  # NHWC: nnx.Conv's layout
    t = jnp.asarray(t)

    @nnx.jit
    def train_step(model, optimizer, x, t):
        def loss_fn(model):
            return optax.softmax_cross_entropy_with_integer_labels(model(x), t).mean()
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    model.train()
    out = {}

    def step():
        out["loss"] = train_step(model, optimizer, x, t)
        return out["loss"]

    return step, lambda: float(jax.block_until_ready(out["loss"]))


def flax_lm(cfg, xs, ts, family="lstm"):
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    V, D, H = cfg["V"], cfg["D"], cfg["H"]
    rngs = nnx.Rngs(0)

    class LM(nnx.Module):
        def __init__(self):
            self.embed = nnx.Embed(V, D, rngs=rngs)
            cell = nnx.LSTMCell(D, H, rngs=rngs) if family == "lstm" else nnx.GRUCell(D, H, rngs=rngs)
            self.rnn = nnx.RNN(cell, return_carry=True)
            self.out = nnx.Linear(H, V, rngs=rngs)

        def __call__(self, xs, carry):
            carry, hs = self.rnn(self.embed(xs), initial_carry=carry)
            return self.out(hs), carry

    model = LM()
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    N = xs.shape[0]
    carry = (jnp.zeros((N, H)), jnp.zeros((N, H))) if family == "lstm" else jnp.zeros((N, H))
    xs, ts = jnp.asarray(xs), jnp.asarray(ts)

    @nnx.jit
    def train_step(model, optimizer, xs, ts, carry):
        def loss_fn(model):
            scores, new = model(xs, jax.lax.stop_gradient(carry))
            return optax.softmax_cross_entropy_with_integer_labels(scores, ts).mean(), new
        (loss, new), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads)
        return loss, new

    out = {"carry": carry}

    def step():
        out["loss"], out["carry"] = train_step(model, optimizer, xs, ts, out["carry"])
        return out["loss"]

    return step, lambda: float(jax.block_until_ready(out["loss"]))


# ------------------------------------------------------------------------------------------------
# PyTorch eager
# ------------------------------------------------------------------------------------------------


def torch_classifier(layers, cfg, x, t):
    import torch
    from torch import nn

    torch.manual_seed(0)
    C, H, W = cfg.get("input_chw", (1, 1, 1))
    D = int(np.prod(x.shape[1:]))
    mods = []
    for spec in layers:
        if spec[0] == "conv":
            _, _, stride, pad, FN, FS = spec
            mods.append(nn.Conv2d(C, FN, FS, stride=stride, padding=pad))
            C, H, W = FN, (H + 2 * pad - FS) // stride + 1, (W + 2 * pad - FS) // stride + 1
        elif spec[0] == "relu":
            mods.append(nn.ReLU())
        elif spec[0] == "pool":
            mods.append(nn.MaxPool2d(2, 2))
            H, W = H // 2, W // 2
        elif spec[0] == "flatten":
            mods.append(nn.Flatten())
            D = C * H * W
        elif spec[0] == "affine":
            mods.append(nn.Linear(D, spec[2]))
            D = spec[2]
        else:
            mods.append(nn.Dropout(spec[1]))
    model = nn.Sequential(*mods).train()
    return _torch_train(model, torch.from_numpy(x), torch.from_numpy(t).long())


def torch_device() -> str:
    """Where PyTorch runs: on the GPU when JAX runs on one (a fair comparison), else the CPU."""
    import jax
    import torch

    return "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"


def _torch_train(model, x, t, lm_family=None):
    import torch
    import torch.nn.functional as F

    device = torch_device()
    model, x, t = model.to(device), x.to(device), t.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = {"state": None}

    def step():
        opt.zero_grad(set_to_none=True)
        if lm_family is None:
            scores = model(x)
        else:
            scores, state = model(x, out["state"])
            out["state"] = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), t.reshape(-1))
        loss.backward()
        opt.step()
        out["loss"] = loss
        return loss

    return step, lambda: float(out["loss"])


def torch_lm(cfg, xs, ts, family="lstm"):
    import torch
    from torch import nn

    torch.manual_seed(0)
    V, D, H = cfg["V"], cfg["D"], cfg["H"]

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, D)
            self.rnn = (nn.LSTM if family == "lstm" else nn.GRU)(D, H, batch_first=True)
            self.out = nn.Linear(H, V)

        def forward(self, xs, state):
            hs, state = self.rnn(self.embed(xs), state)
            return self.out(hs), state

    return _torch_train(LM().train(), torch.from_numpy(xs).long(), torch.from_numpy(ts).long(),
                        lm_family=family)
