"""Benchmark: one training step (batch 100, Adam, float32) of SimpleConvNet and DeepConvNet.

Times, in one process, the whole jitted training step of

* fnn ``grad="manual"`` (the book's backprop through im2col, NHWC inside) and
  fnn ``grad="autodiff"`` (``jax.grad`` of the lax.conv forward, NHWC inside),
* ``jax-ref``: a plain ``jax.value_and_grad`` + ``optax.adam`` step on ``lax.conv_general_dilated``
  and ``lax.reduce_window`` in NCHW, written here,
* ``numpy``: the book's algorithm (im2col, its layers' backward, Adam) in NumPy, written here,
* ``torch``: PyTorch eager (``nn.Conv2d`` ...), when ``import torch`` works,

and reports steps/s, GFLOP/s (the step's multiply-adds x 2, backward counted as twice the
forward) and the ratio to PyTorch. Also: the first step's trace + compile time, and how long a
fresh Python process takes to its first trained step.

    python scripts/bench_cnn.py                 # both networks, every implementation
    python scripts/bench_cnn.py --models simple --steps 50

Data are random (speed does not depend on them). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from fnn.models import cnn
from fnn.train import init_train_state, make_step

NETS = {"simple": cnn.simple_convnet, "deep": cnn.deep_convnet}


def forward_flops(layers, input_dim=(1, 28, 28)) -> int:
    """Multiply-adds x 2 of one image's forward pass through conv and affine layers."""
    C, H, W = input_dim
    flops, D = 0, None
    for layer in layers:
        if isinstance(layer, cnn.Conv):
            F = layer.filter_size
            H, W = (H + 2 * layer.pad - F) // layer.stride + 1, (W + 2 * layer.pad - F) // layer.stride + 1
            flops += 2 * H * W * layer.filter_num * C * F * F
            C = layer.filter_num
        elif isinstance(layer, cnn.Pool):
            H, W = H // layer.stride, W // layer.stride
        elif isinstance(layer, cnn.Flatten):
            D = C * H * W
        elif isinstance(layer, cnn.Affine):
            flops += 2 * D * layer.size
            D = layer.size
    return flops


def net_layers(name):
    """fnn's layer specs of the network, which the NumPy and PyTorch versions follow."""
    return cnn.simple_convnet_layers() if name == "simple" else cnn.deep_convnet_layers()


def timeit(step, state, steps: int, warmup: int = 2):
    """(first call seconds, steps/s over `steps` calls after `warmup`)."""
    t0 = time.perf_counter()
    state = step(state, 0)
    jax.block_until_ready(state)
    first = time.perf_counter() - t0
    for i in range(warmup):
        state = step(state, i + 1)
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    for i in range(steps):
        state = step(state, i + warmup + 1)
    jax.block_until_ready(state)
    return first, steps / (time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------
# fnn
# ------------------------------------------------------------------------------------------------


def bench_fnn(name, grad, x, t, steps):
    model = NETS[name](conv="im2col" if grad == "manual" else "lax")
    opt = optax.adam(1e-3)
    ts = init_train_state(model, opt, jax.random.key(0))
    step = jax.jit(make_step(model, opt, grad=grad), donate_argnums=0)
    keys = jax.random.split(jax.random.key(1), 4096)
    return timeit(lambda s, i: step(s, (x, t), keys[i % 4096])[0], ts, steps)


# ------------------------------------------------------------------------------------------------
# plain JAX reference: NCHW lax.conv + reduce_window, value_and_grad, optax.adam
# ------------------------------------------------------------------------------------------------


def bench_jax_ref(name, x, t, steps):
    layers = net_layers(name)
    params, _ = NETS[name]().init(jax.random.key(0))
    opt = optax.adam(1e-3)

    def forward(p, x, key):
        keys = iter(jax.random.split(key, 2))
        for layer in layers:
            if isinstance(layer, cnn.Conv):
                x = lax.conv_general_dilated(x, p[f"W{layer.index}"], (1, 1),
                                             [(layer.pad, layer.pad)] * 2)
                x = x + p[f"b{layer.index}"][None, :, None, None]
            elif isinstance(layer, cnn.Act):
                x = jax.nn.relu(x)
            elif isinstance(layer, cnn.Pool):
                x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
            elif isinstance(layer, cnn.Flatten):
                x = x.reshape(x.shape[0], -1)
            elif isinstance(layer, cnn.Affine):
                x = x @ p[f"W{layer.index}"] + p[f"b{layer.index}"]
            else:
                x = x * jax.random.bernoulli(next(keys), 0.5, x.shape)
        return x

    def loss(p, x, t, key):
        return optax.softmax_cross_entropy_with_integer_labels(forward(p, x, key), t).mean()

    @jax.jit
    def step(state, i):
        p, s = state
        g = jax.grad(loss)(p, x, t, jax.random.fold_in(jax.random.key(1), i))
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    return timeit(step, (params, opt.init(params)), steps)


# ------------------------------------------------------------------------------------------------
# NumPy: the book's algorithm (common/util.py im2col/col2im, common/layers.py, Adam)
# ------------------------------------------------------------------------------------------------


def np_im2col(x, FH, FW, stride, pad):
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.zeros((N, C, FH, FW, OH, OW), x.dtype)
    for y in range(FH):
        for x_ in range(FW):
            col[:, :, y, x_] = img[:, :, y:y + stride * OH:stride, x_:x_ + stride * OW:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1), (OH, OW)


def np_col2im(col, shape, FH, FW, stride, pad, OH, OW):
    N, C, H, W = shape
    col = col.reshape(N, OH, OW, C, FH, FW).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1), col.dtype)
    for y in range(FH):
        for x_ in range(FW):
            img[:, :, y:y + stride * OH:stride, x_:x_ + stride * OW:stride] += col[:, :, y, x_]
    return img[:, :, pad:H + pad, pad:W + pad]


def bench_numpy(name, x, t, steps):
    layers = net_layers(name)
    p = {k: np.array(v) for k, v in NETS[name]().init(jax.random.key(0))[0].items()}  # writable
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(a) for k, a in p.items()}
    x, t = np.asarray(x), np.asarray(t)
    rng = np.random.default_rng(0)

    def step(it):
        h, caches = x, []
        for layer in layers:  # forward, keeping what backward needs
            if isinstance(layer, cnn.Conv):
                W, b = p[f"W{layer.index}"], p[f"b{layer.index}"]
                FN, _, FH, FW = W.shape
                col, (OH, OW) = np_im2col(h, FH, FW, 1, layer.pad)
                caches.append((h.shape, col, OH, OW))
                h = (col @ W.reshape(FN, -1).T + b).reshape(h.shape[0], OH, OW, FN).transpose(0, 3, 1, 2)
            elif isinstance(layer, cnn.Act):
                caches.append(h <= 0)
                h = np.where(h > 0, h, 0)
            elif isinstance(layer, cnn.Pool):
                N, C, H, W_ = h.shape
                col, (OH, OW) = np_im2col(h, 2, 2, 2, 0)
                col = col.reshape(-1, 4)
                arg = np.argmax(col, axis=1)
                caches.append((h.shape, arg, OH, OW))
                h = np.max(col, axis=1).reshape(N, OH, OW, C).transpose(0, 3, 1, 2)
            elif isinstance(layer, cnn.Flatten):
                caches.append(h.shape)
                h = h.reshape(h.shape[0], -1)
            elif isinstance(layer, cnn.Affine):
                caches.append(h)
                h = h @ p[f"W{layer.index}"] + p[f"b{layer.index}"]
            else:
                mask = rng.random(h.shape) > 0.5
                caches.append(mask)
                h = h * mask
        y = np.exp(h - h.max(1, keepdims=True))
        y /= y.sum(1, keepdims=True)
        d = y.copy()
        d[np.arange(len(t)), t] -= 1
        d /= len(t)
        g = {}
        for layer, cache in zip(reversed(layers), reversed(caches), strict=True):
            if isinstance(layer, cnn.Conv):
                shape, col, OH, OW = cache
                W = p[f"W{layer.index}"]
                FN, C, FH, FW = W.shape
                d2 = d.transpose(0, 2, 3, 1).reshape(-1, FN)
                g[f"b{layer.index}"] = d2.sum(0)
                g[f"W{layer.index}"] = (col.T @ d2).T.reshape(W.shape)
                if layer.index > 1:
                    d = np_col2im(d2 @ W.reshape(FN, -1), shape, FH, FW, 1, layer.pad, OH, OW)
            elif isinstance(layer, cnn.Act):
                d = np.where(cache, 0, d)
            elif isinstance(layer, cnn.Pool):
                shape, arg, OH, OW = cache
                dd = d.transpose(0, 2, 3, 1).ravel()
                dmax = np.zeros((dd.size, 4), d.dtype)
                dmax[np.arange(arg.size), arg] = dd
                d = np_col2im(dmax.reshape(-1, shape[1] * 4), shape, 2, 2, 2, 0, OH, OW)
            elif isinstance(layer, cnn.Flatten):
                d = d.reshape(cache)
            elif isinstance(layer, cnn.Affine):
                g[f"W{layer.index}"] = cache.T @ d
                g[f"b{layer.index}"] = d.sum(0)
                d = d @ p[f"W{layer.index}"].T
            else:
                d = d * cache
        lr_t = 1e-3 * np.sqrt(1 - 0.999 ** (it + 1)) / (1 - 0.9 ** (it + 1))
        for k in p:  # the book's Adam
            m[k] += 0.1 * (g[k] - m[k])
            v[k] += 0.001 * (g[k] ** 2 - v[k])
            p[k] -= lr_t * m[k] / (np.sqrt(v[k]) + 1e-7)

    step(0)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i + 1)
    return None, steps / (time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------
# PyTorch eager
# ------------------------------------------------------------------------------------------------


def bench_torch(name, x, t, steps):
    import torch
    from torch import nn

    torch.manual_seed(0)
    mods = []
    for layer in net_layers(name):
        if isinstance(layer, cnn.Conv):
            c_in = mods and [m for m in mods if isinstance(m, nn.Conv2d)]
            mods.append(nn.Conv2d(c_in[-1].out_channels if c_in else 1, layer.filter_num,
                                  layer.filter_size, padding=layer.pad))
        elif isinstance(layer, cnn.Act):
            mods.append(nn.ReLU())
        elif isinstance(layer, cnn.Pool):
            mods.append(nn.MaxPool2d(2))
        elif isinstance(layer, cnn.Flatten):
            mods.append(nn.Flatten())
        elif isinstance(layer, cnn.Affine):
            mods.append(nn.LazyLinear(layer.size))
        else:
            mods.append(nn.Dropout(0.5))
    net = nn.Sequential(*mods)
    xt, tt = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(t)).long()
    net(xt)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), tt).backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return None, steps / (time.perf_counter() - t0)


FRESH = """
import time; t0 = time.perf_counter()
import jax, optax
from fnn.models import cnn
from fnn.train import init_train_state, make_step
m = cnn.simple_convnet()
opt = optax.adam(1e-3)
ts = init_train_state(m, opt, jax.random.key(0))
x = jax.numpy.zeros((100, 1, 28, 28)); t = jax.numpy.zeros(100, jax.numpy.int32)
ts, _ = jax.jit(make_step(m, opt, grad="manual"))(ts, (x, t), jax.random.key(1))
jax.block_until_ready(ts)
print(time.perf_counter() - t0)
"""


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="simple,deep")
    p.add_argument("--steps", type=int, default=30, help="timed steps per jitted implementation")
    p.add_argument("--numpy-steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((args.batch, 1, 28, 28), np.float32))
    t = jnp.asarray(rng.integers(0, 10, args.batch), jnp.int32)
    results = {}
    for name in args.models.split(","):
        gflop = 3 * forward_flops(net_layers(name)) * args.batch / 1e9
        impls = {"fnn-manual": lambda n: bench_fnn(n, "manual", x, t, args.steps),
                 "fnn-autodiff": lambda n: bench_fnn(n, "autodiff", x, t, args.steps),
                 "jax-ref": lambda n: bench_jax_ref(n, x, t, args.steps),
                 "numpy": lambda n: bench_numpy(n, x, t, args.numpy_steps)}
        if have_torch:
            impls["torch"] = lambda n: bench_torch(n, x, t, args.steps)
        res = {}
        for impl, fn in impls.items():
            first, sps = fn(name)
            res[impl] = {"steps_per_s": sps, "gflop_per_s": sps * gflop, "first_step_s": first}
        ref = res.get("torch", res["jax-ref"])["steps_per_s"]
        print(f"\n{name}: {gflop:.2f} GFLOP per step (batch {args.batch})")
        print(f"{'':14s} {'steps/s':>9s} {'GFLOP/s':>9s} {'vs ' + ('torch' if have_torch else 'jax-ref'):>9s}"
              f" {'1st step s':>10s}")
        for impl, r in res.items():
            first = f"{r['first_step_s']:.2f}" if r["first_step_s"] is not None else "-"
            print(f"{impl:14s} {r['steps_per_s']:9.1f} {r['gflop_per_s']:9.1f} "
                  f"{r['steps_per_s'] / ref:9.2f} {first:>10s}")
        results[name] = res
    t0 = time.perf_counter()
    inner = float(subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True,
                                 check=True).stdout.split()[-1])
    results["fresh_process_first_step_s"] = time.perf_counter() - t0
    print(f"\nfresh process to its first trained SimpleConvNet step: "
          f"{results['fresh_process_first_step_s']:.2f} s ({inner:.2f} s after interpreter start)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
