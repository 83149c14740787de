"""The benchmark's NumPy reference: one training step of each model, the book's algorithms in NumPy.

Written for `scripts/bench.py` from the equations of DLFS1 ch5–8 and DLFS2 ch5–6 (not copied from
the book's code): Affine, ReLU, SoftmaxWithLoss (DLFS1 §5.5–5.6), im2col convolution and im2col
max pooling with the argmax backward (§7.4), Dropout without rescaling (§6.4.3), the book's Adam
(§6.1.6), and DLFS2's TimeEmbedding, TimeLSTM / TimeGRU (a Python loop over time, as the book's
Time layers, each step ``A = x Wx + h_prev Wh + b``; gate order f, g, i, o and z, r, h~), TimeAffine
and TimeSoftmaxWithLoss. Everything is float32; the LMs are stateful (truncated BPTT, the carry
goes on from step to step).

Each model is a class with ``step()`` (forward, backward, Adam update; returns the loss) and
``loss_and_grads()`` (no update; tests compare it with a numerical gradient).
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


# ------------------------------------------------------------------------------------------------
# Layers (DLFS1 ch5, ch7): forward returns (y, cache), backward returns (grads..., dx)
# ------------------------------------------------------------------------------------------------


def affine_forward(x, W, b):
    return x @ W + b, x


def affine_backward(x, W, dy):
    """dW = x^T dy, db = sum dy, dx = dy W^T (DLFS1 §5.6.2)."""
    return x.T @ dy, dy.sum(axis=0), dy @ W.T


def relu_forward(x):
    mask = x > 0
    return x * mask, mask


def softmax_with_loss(scores, t):
    """Mean cross-entropy of softmax(scores) (N, C) at labels t (N,), and dscores = (y - t) / N."""
    N = scores.shape[0]
    z = scores - scores.max(axis=1, keepdims=True)
    y = np.exp(z)
    y /= y.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(y[np.arange(N), t] + 1e-7))
    dx = y
    dx[np.arange(N), t] -= 1
    return loss, dx / N


def im2col(x, FH, FW, stride, pad):
    """x (N, C, H, W) -> col (N*OH*OW, C*FH*FW): one strided copy per filter offset (DLFS1 §7.4.3)."""
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    col = np.empty((N, C, FH, FW, OH, OW), x.dtype)
    for i in range(FH):
        for j in range(FW):
            col[:, :, i, j] = xp[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1), OH, OW


def col2im(col, x_shape, FH, FW, stride, pad):
    """Adjoint of `im2col`: add every column entry back to the pixel it was read from."""
    N, C, H, W = x_shape
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    col = col.reshape(N, OH, OW, C, FH, FW).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad, W + 2 * pad), col.dtype)
    for i in range(FH):
        for j in range(FW):
            img[:, :, i:i + stride * OH:stride, j:j + stride * OW:stride] += col[:, :, i, j]
    return img[:, :, pad:pad + H, pad:pad + W]


def conv_forward(x, W, b, stride=1, pad=0):
    """y = im2col(x) W_col + b, NCHW (DLFS1 §7.4.3)."""
    FN, _, FH, FW = W.shape
    col, OH, OW = im2col(x, FH, FW, stride, pad)
    W_col = W.reshape(FN, -1).T
    y = (col @ W_col + b).reshape(x.shape[0], OH, OW, FN).transpose(0, 3, 1, 2)
    return y, (x.shape, col, W_col, stride, pad)


def conv_backward(cache, W, dy):
    x_shape, col, W_col, stride, pad = cache
    FN, C, FH, FW = W.shape
    d2 = dy.transpose(0, 2, 3, 1).reshape(-1, FN)
    dW = (col.T @ d2).T.reshape(FN, C, FH, FW)
    dx = col2im(d2 @ W_col.T, x_shape, FH, FW, stride, pad)
    return dW, d2.sum(axis=0), dx


def pool_forward(x, P=2, stride=2):
    """Max over P x P windows through im2col, keeping each window's argmax (DLFS1 §7.4.4)."""
    N, C, _, _ = x.shape
    col, OH, OW = im2col(x, P, P, stride, 0)
    col = col.reshape(-1, P * P)                     # rows (n, oh, ow, c)
    arg = col.argmax(axis=1)
    y = col[np.arange(col.shape[0]), arg].reshape(N, OH, OW, C).transpose(0, 3, 1, 2)
    return y, (x.shape, arg, P, stride)


def pool_backward(cache, dy):
    x_shape, arg, P, stride = cache
    d = dy.transpose(0, 2, 3, 1).ravel()
    dmax = np.zeros((d.size, P * P), dy.dtype)
    dmax[np.arange(d.size), arg] = d
    N, _, OH, OW = dy.shape
    return col2im(dmax.reshape(N * OH * OW, -1), x_shape, P, P, stride, 0)


class Adam:
    """The book's Adam (DLFS1 §6.1.6): bias correction folded into lr_t, eps 1e-7."""

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.iter = lr, beta1, beta2, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def update(self, params, grads):
        self.iter += 1
        lr_t = self.lr * np.sqrt(1 - self.beta2 ** self.iter) / (1 - self.beta1 ** self.iter)
        for k, g in grads.items():
            self.m[k] += (1 - self.beta1) * (g - self.m[k])
            self.v[k] += (1 - self.beta2) * (g * g - self.v[k])
            params[k] -= (lr_t * self.m[k] / (np.sqrt(self.v[k]) + 1e-7)).astype(F32)


def _normal(rng, shape, std):
    return (rng.standard_normal(shape) * std).astype(F32)


# ------------------------------------------------------------------------------------------------
# Networks as lists of layer specs ("conv", i, stride, pad) / ("relu",) / ("pool",) / ("flatten",)
# / ("affine", i) / ("dropout", rate), run forward collecting caches and backward in reverse.
# ------------------------------------------------------------------------------------------------


class Net:
    """A feed-forward net of the book's layers with a softmax-with-loss head and Adam."""

    def __init__(self, layers, params, x, t, seed=0):
        self.layers, self.params, self.x, self.t = layers, params, x, t
        self.rng = np.random.default_rng(seed)
        self.opt = Adam(params)

    def step(self) -> float:
        loss, grads = self.loss_and_grads()
        self.opt.update(self.params, grads)
        return loss

    def loss_and_grads(self):
        """The loss and the gradient of every parameter (forward, then backward in reverse)."""
        p, h, caches = self.params, self.x, []
        for layer in self.layers:
            kind = layer[0]
            if kind == "conv":
                h, c = conv_forward(h, p[f"W{layer[1]}"], p[f"b{layer[1]}"], layer[2], layer[3])
            elif kind == "affine":
                h, c = affine_forward(h, p[f"W{layer[1]}"], p[f"b{layer[1]}"])
            elif kind == "relu":
                h, c = relu_forward(h)
            elif kind == "pool":
                h, c = pool_forward(h)
            elif kind == "flatten":
                h, c = h.reshape(h.shape[0], -1), h.shape
            else:  # dropout: the book's mask, no rescaling in training
                c = self.rng.random(h.shape) > layer[1]
                h = h * c
            caches.append(c)
        loss, d = softmax_with_loss(h, self.t)
        grads = {}
        for layer, c in zip(reversed(self.layers), reversed(caches), strict=True):
            kind = layer[0]
            if kind == "conv":
                i = layer[1]
                grads[f"W{i}"], grads[f"b{i}"], d = conv_backward(c, p[f"W{i}"], d)
            elif kind == "affine":
                i = layer[1]
                grads[f"W{i}"], grads[f"b{i}"], d = affine_backward(c, p[f"W{i}"], d)
            elif kind == "flatten":
                d = d.reshape(c)
            else:  # relu, dropout: multiply by the mask; pool: argmax routing
                d = pool_backward(c, d) if kind == "pool" else d * c
        return float(loss), grads


def mlp(cfg, x, t, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [cfg["input"], *cfg["hidden"], cfg["classes"]]
    params, layers = {}, []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        params[f"W{i}"] = _normal(rng, (n_in, n_out), np.sqrt(2 / n_in))
        params[f"b{i}"] = np.zeros(n_out, F32)
        layers += [("affine", i), ("relu",)]
    return Net(layers[:-1], params, x.reshape(x.shape[0], -1), t, seed)


def convnet(layers, cfg, x, t, seed=0):
    """A conv net from `bench.cnn_layers` specs, He initialisation."""
    rng = np.random.default_rng(seed)
    params = {}
    C, H, W = cfg["input_chw"]
    D = None
    for layer in layers:
        if layer[0] == "conv":
            _, i, stride, pad, FN, FS = layer
            params[f"W{i}"] = _normal(rng, (FN, C, FS, FS), np.sqrt(2 / (C * FS * FS)))
            params[f"b{i}"] = np.zeros(FN, F32)
            C, H, W = FN, (H + 2 * pad - FS) // stride + 1, (W + 2 * pad - FS) // stride + 1
        elif layer[0] == "pool":
            H, W = H // 2, W // 2
        elif layer[0] == "flatten":
            D = C * H * W
        elif layer[0] == "affine":
            _, i, size = layer
            params[f"W{i}"] = _normal(rng, (D, size), np.sqrt(2 / D))
            params[f"b{i}"] = np.zeros(size, F32)
            D = size
    return Net([spec[:4] if spec[0] == "conv" else spec[:2] for spec in layers], params, x, t, seed)


# ------------------------------------------------------------------------------------------------
# DLFS2 ch6: Embedding - TimeLSTM / TimeGRU (stateful) - TimeAffine - TimeSoftmaxWithLoss
# ------------------------------------------------------------------------------------------------


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_step(Wx, Wh, b, x, h_prev, c_prev):
    """A = x Wx + h_prev Wh + b; gates f, g, i, o; c = f c_prev + g i; h = o tanh(c) (DLFS2 §6.3)."""
    H = h_prev.shape[1]
    A = x @ Wx + h_prev @ Wh + b
    f, g, i, o = sigmoid(A[:, :H]), np.tanh(A[:, H:2 * H]), sigmoid(A[:, 2 * H:3 * H]), sigmoid(A[:, 3 * H:])
    c = f * c_prev + g * i
    tc = np.tanh(c)
    return o * tc, c, (x, h_prev, c_prev, f, g, i, o, tc)


def lstm_step_backward(Wx, Wh, cache, dh, dc):
    x, h_prev, c_prev, f, g, i, o, tc = cache
    ds = dc + dh * o * (1 - tc * tc)
    dA = np.hstack((ds * c_prev * f * (1 - f), ds * i * (1 - g * g), ds * g * i * (1 - i),
                    dh * tc * o * (1 - o)))
    return x.T @ dA, h_prev.T @ dA, dA.sum(axis=0), dA @ Wx.T, dA @ Wh.T, ds * f


def gru_step(Wx, Wh, b, x, h_prev):
    """z, r, h~ (DLFS2 appendix C): h = (1 - z) h_prev + z h~, the reset gate on h_prev before Whh."""
    H = h_prev.shape[1]
    xa = x @ Wx + b
    z = sigmoid(xa[:, :H] + h_prev @ Wh[:, :H])
    r = sigmoid(xa[:, H:2 * H] + h_prev @ Wh[:, H:2 * H])
    hh = np.tanh(xa[:, 2 * H:] + (r * h_prev) @ Wh[:, 2 * H:])
    return (1 - z) * h_prev + z * hh, (x, h_prev, z, r, hh)


def gru_step_backward(Wx, Wh, cache, dh):
    x, h_prev, z, r, hh = cache
    H = h_prev.shape[1]
    dt = dh * z * (1 - hh * hh)                    # through h~'s tanh
    dhr = dt @ Wh[:, 2 * H:].T
    dz = dh * (hh - h_prev) * z * (1 - z)
    dr = dhr * h_prev * r * (1 - r)
    dA = np.hstack((dz, dr, dt))                   # pre-activations, order z, r, h~
    dWh = np.hstack((h_prev.T @ dz, h_prev.T @ dr, (r * h_prev).T @ dt))
    dh_prev = dh * (1 - z) + r * dhr + dz @ Wh[:, :H].T + dr @ Wh[:, H:2 * H].T
    return x.T @ dA, dWh, dA.sum(axis=0), dA @ Wx.T, dh_prev


class RnnLM:
    """The book's Rnnlm (DLFS2 §6.4) with an LSTM or GRU, stateful, Adam."""

    def __init__(self, cfg, xs, ts, family="lstm", seed=0):
        rng = np.random.default_rng(seed)
        V, D, H = cfg["V"], cfg["D"], cfg["H"]
        G = {"lstm": 4, "gru": 3}[family] * H
        self.family, self.xs, self.ts = family, xs, ts
        self.params = {"embed_W": _normal(rng, (V, D), 0.01), "Wx": _normal(rng, (D, G), 1 / np.sqrt(D)),
                       "Wh": _normal(rng, (H, G), 1 / np.sqrt(H)), "b": np.zeros(G, F32),
                       "affine_W": _normal(rng, (H, V), 1 / np.sqrt(H)), "affine_b": np.zeros(V, F32)}
        N = xs.shape[0]
        self.h, self.c = np.zeros((N, H), F32), np.zeros((N, H), F32)
        self.opt = Adam(self.params)

    def step(self) -> float:
        loss, grads, (self.h, self.c) = self.loss_and_grads()
        self.opt.update(self.params, grads)
        return loss

    def loss_and_grads(self):
        """Loss, gradients and the carry after the batch (truncated BPTT: no gradient to the carry)."""
        p, xs, ts = self.params, self.xs, self.ts
        N, T = xs.shape
        h, c = self.h, self.c
        H = h.shape[1]
        emb = p["embed_W"][xs]                                          # (N, T, D)
        hs, caches = np.empty((N, T, H), emb.dtype), []
        for k in range(T):
            if self.family == "lstm":
                h, c, cache = lstm_step(p["Wx"], p["Wh"], p["b"], emb[:, k], h, c)
            else:
                h, cache = gru_step(p["Wx"], p["Wh"], p["b"], emb[:, k], h)
            hs[:, k] = h
            caches.append(cache)
        h2 = hs.reshape(N * T, H)
        loss, dscores = softmax_with_loss(h2 @ p["affine_W"] + p["affine_b"], ts.reshape(-1))
        g = dict.fromkeys(p)
        g["affine_W"], g["affine_b"], dh2 = affine_backward(h2, p["affine_W"], dscores)
        dhs = dh2.reshape(N, T, H)
        g["Wx"], g["Wh"], g["b"] = np.zeros_like(p["Wx"]), np.zeros_like(p["Wh"]), np.zeros_like(p["b"])
        demb = np.empty_like(emb)
        dh, dc = np.zeros_like(h), np.zeros_like(h)
        for k in reversed(range(T)):
            if self.family == "lstm":
                dWx, dWh, db, dx, dh, dc = lstm_step_backward(p["Wx"], p["Wh"], caches[k], dhs[:, k] + dh, dc)
            else:
                dWx, dWh, db, dx, dh = gru_step_backward(p["Wx"], p["Wh"], caches[k], dhs[:, k] + dh)
            g["Wx"] += dWx
            g["Wh"] += dWh
            g["b"] += db
            demb[:, k] = dx
        g["embed_W"] = np.zeros_like(p["embed_W"])
        np.add.at(g["embed_W"], xs.ravel(), demb.reshape(N * T, -1))
        return float(loss), g, (h, c)
