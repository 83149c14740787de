"""Reference values from the books' own code: inputs and outputs of their classes, for fnn's tests.

Runs the classes of *Deep Learning from Scratch* (DLFS1, ``oreilly-japan/deep-learning-from-scratch``)
and of its sequel's recurrent chapters (DLFS2, ``oreilly-japan/deep-learning-from-scratch-2``) on
seeded inputs, and writes what went in and what came out, values only, to

    tests/reference/book_reference.npz    arrays, one per name "<book>/<case>/<value>"
    tests/reference/book_reference.json   the books' commits, numpy's version, the date, and for
                                          every case the class it ran and what each value is

``tests/test_book_reference.py`` feeds the same inputs to fnn's public API and compares value by
value; it needs only these two files, not the books.

Usage::

    python scripts/book_reference.py [--dlfs1 REPO] [--dlfs2 REPO] [--out tests/reference/book_reference.npz]
    python scripts/book_reference.py --check      # regenerate in memory, compare with the committed files

REPO is a git repository of the book (a bare mirror is enough): its HEAD is extracted with
``git archive`` into a temporary directory, whose ``common/`` package (and the chapter files that
define the models) are imported from there. No book code is copied into fnn or into the output.

Precision. DLFS1 computes in float64, and so do these runs. DLFS2 computes in float32
(``np.empty(..., dtype='f')`` buffers in ``common/time_layers.py``, ``.astype('f')`` weights); for
comparisons at float64 precision its layers run in float64 here: after import,
``common.time_layers.np`` (the module's name for numpy) is replaced by a thin wrapper of numpy whose
``empty``/``zeros`` turn a float32 dtype into float64 and whose ``float32`` is ``float64``; every
other call is numpy's own. The models' weights (float32 from their ``__init__``) are then replaced
by float64 arrays (`_set_weights`), the tied output weight of BetterRnnlm staying a transposed view
of the embedding. Every recorded DLFS2 output is checked to be float64. One case,
``dlfs2/Rnnlm_float32``, runs the unpatched float32 code, to show what float32 rounding does. All
DLFS2 inputs are float32-representable (rounded to float32, stored as float32), so the float32 and
float64 runs see the same numbers.

Reproducibility. Every input comes from a seeded ``np.random.RandomState`` (legacy, stable across
numpy versions), every dropout mask from ``np.random.seed`` before the book's own ``np.random.rand``.
The .npz is written with fixed zip timestamps and sorted names, so a rerun with the same numpy on
the same machine reproduces it bit for bit; the .json differs only in its "generated" date.
Another numpy or BLAS (matrix products summed in another order) can change the last bits of the
outputs; ``--check`` then reports the largest relative difference per array instead of
"identical".
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import importlib.util
import io
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DLFS1_MIRROR = Path("/work/.mirror/oreilly-japan+deep-learning-from-scratch/repo")
DLFS2_MIRROR = Path("/work/.mirror/oreilly-japan+deep-learning-from-scratch-2/repo")
DEFAULT_OUT = ROOT / "tests" / "reference" / "book_reference.npz"

# ------------------------------------------------------------------------------------------------
# The record: arrays by name, and what each case is
# ------------------------------------------------------------------------------------------------


class Record:
    """Arrays named "<book>/<case>/<value>" and, per case, the book's class and the values' meaning."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self.cases: dict[str, dict] = {}

    def case(self, name: str, source: str, what: str, **values) -> None:
        """Record one case: `values` maps a value name to ``(array, description)``."""
        if name in self.cases:
            raise ValueError(f"Record.case: {name!r} recorded twice")
        self.cases[name] = {"source": source, "what": what, "values": {}}
        for key, (array, description) in values.items():
            a = np.asarray(array)
            if a.dtype == object or (a.dtype.kind == "f" and not np.all(np.isfinite(a))):
                raise ValueError(f"Record.case: {name}/{key} is not a finite numeric array")
            self.arrays[f"{name}/{key}"] = a
            self.cases[name]["values"][key] = f"{description} {a.dtype} {list(a.shape)}"


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz (np.load reads it) with sorted names and fixed timestamps: the same arrays give the
    same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


# ------------------------------------------------------------------------------------------------
# The books' code: extracted from git, imported, forgotten again
# ------------------------------------------------------------------------------------------------


def git_head(repo: Path) -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "date": git("log", "-1", "--format=%cI", "HEAD"),
            "subject": git("log", "-1", "--format=%s", "HEAD")}


@contextlib.contextmanager
def book_code(repo: Path):
    """The book's HEAD extracted to a temporary directory on ``sys.path``; yields the directory.

    Both books call their package ``common``: it is removed from ``sys.modules`` on exit, and
    ``sys.path`` is restored (the chapter files append ``..`` to it).
    """
    saved_path = list(sys.path)
    with tempfile.TemporaryDirectory(prefix="book_reference_") as tmp:
        archive = subprocess.run(["git", "-C", str(repo), "archive", "HEAD", "common", "ch05", "ch06",
                                  "ch07", "ch08"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        sys.path.insert(0, tmp)
        try:
            yield Path(tmp)
        finally:
            sys.path[:] = saved_path
            for name in list(sys.modules):
                if name == "common" or name.startswith(("common.", "book_")):
                    del sys.modules[name]


def load_file(root: Path, relpath: str):
    """A chapter file (``ch07/simple_convnet.py``) imported as a module."""
    name = "book_" + relpath.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, root / relpath)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------
# DLFS1 (float64): common/layers.py, common/optimizer.py, the MLPs, the conv nets
# ------------------------------------------------------------------------------------------------

SRC1 = "DLFS1 common/layers.py"


def dlfs1_layers(rec: Record, layers) -> None:
    rng = np.random.RandomState(1)

    x = rng.randn(3, 4)
    x[0, 0] = 0.0  # the book's mask is x <= 0
    dout = rng.randn(3, 4)
    relu = layers.Relu()
    y = relu.forward(x)
    dx = relu.backward(dout.copy())  # the book's backward writes into dout
    rec.case("dlfs1/Relu", SRC1 + " Relu", "forward(x) and backward(dout)",
             x=(x, "input"), y=(y, "forward(x)"), dout=(dout, "upstream gradient"), dx=(dx, "backward(dout)"))

    x = rng.uniform(-5, 5, (3, 4))
    dout = rng.randn(3, 4)
    sig = layers.Sigmoid()
    y = sig.forward(x)
    dx = sig.backward(dout)
    rec.case("dlfs1/Sigmoid", SRC1 + " Sigmoid", "forward(x) and backward(dout)",
             x=(x, "input"), y=(y, "forward(x)"), dout=(dout, "upstream gradient"), dx=(dx, "backward(dout)"))

    x = rng.randn(2, 2, 3, 2)  # a tensor input: the book's Affine flattens it to (N, 12)
    W, b = rng.randn(12, 5), rng.randn(5)
    dout = rng.randn(2, 5)
    aff = layers.Affine(W, b)
    y = aff.forward(x)
    dx = aff.backward(dout)
    rec.case("dlfs1/Affine", SRC1 + " Affine", "forward(x) on a 4-d x and backward(dout)",
             x=(x, "input (N, 2, 3, 2)"), W=(W, "weight (12, 5)"), b=(b, "bias"), y=(y, "forward(x)"),
             dout=(dout, "upstream gradient"), dx=(dx, "backward(dout), x's shape"), dW=(aff.dW, "dW"),
             db=(aff.db, "db"))

    for case, x, t, note in [
        ("SoftmaxWithLoss", rng.randn(4, 5) * 2, rng.randint(0, 5, 4), "labels"),
        ("SoftmaxWithLoss_onehot", rng.randn(4, 5) * 2, np.eye(5)[rng.randint(0, 5, 4)], "one-hot labels"),
        ("SoftmaxWithLoss_extreme", np.array([[0.0, 50.0, -3.0], [2.0, 1.0, 0.5], [30.0, 0.0, 29.0]]),
         np.array([0, 1, 2]), "labels; sample 0's true class has softmax 2e-22, below the 1e-7"),
    ]:
        swl = layers.SoftmaxWithLoss()
        loss = swl.forward(x, t)
        dx = swl.backward(1)
        rec.case(f"dlfs1/{case}", SRC1 + " SoftmaxWithLoss",
                 f"forward(x, t) with {note}, backward(1) (the book's backward ignores dout)",
                 x=(x, "scores"), t=(t, "targets"), loss=(loss, "forward: mean -log(y_t + 1e-7)"),
                 y=(swl.y, "softmax(x), kept by forward"), dx=(dx, "backward(1)"))

    x = rng.randn(4, 5)
    dout = rng.randn(4, 5)
    drop = layers.Dropout(dropout_ratio=0.3)
    np.random.seed(11)
    y = drop.forward(x, train_flg=True)
    dx = drop.backward(dout)
    y_test = drop.forward(x, train_flg=False)
    rec.case("dlfs1/Dropout", SRC1 + " Dropout", "dropout_ratio 0.3: forward in training mode (after "
             "np.random.seed(11)), backward, forward in test mode",
             x=(x, "input"), mask=(drop.mask, "the kept units, rand > 0.3"), y_train=(y, "forward(x, True)"),
             dout=(dout, "upstream gradient"), dx=(dx, "backward(dout)"), y_test=(y_test, "forward(x, False)"))

    # BatchNormalization: (N, D) with given running statistics, and (N, C, H, W) from none
    x, x2 = rng.randn(5, 4) * 2 + 1, rng.randn(3, 4)
    gamma, beta = rng.uniform(0.5, 1.5, 4), rng.randn(4)
    mean0, var0 = rng.randn(4), rng.uniform(0.5, 2, 4)
    dout = rng.randn(5, 4)
    bn = layers.BatchNormalization(gamma, beta, momentum=0.9, running_mean=mean0.copy(),
                                   running_var=var0.copy())
    y = bn.forward(x, train_flg=True)
    dx = bn.backward(dout)
    y_test = bn.forward(x2, train_flg=False)
    rec.case("dlfs1/BatchNormalization", SRC1 + " BatchNormalization",
             "momentum 0.9, given running statistics: forward in training mode, backward, then forward "
             "in test mode on x_test with the updated statistics",
             x=(x, "input (N, D)"), gamma=(gamma, "gamma"), beta=(beta, "beta"),
             running_mean0=(mean0, "running_mean before"), running_var0=(var0, "running_var before"),
             y_train=(y, "forward(x, True)"), running_mean=(bn.running_mean, "running_mean after"),
             running_var=(bn.running_var, "running_var after"), dout=(dout, "upstream gradient"),
             dx=(dx, "backward(dout)"), dgamma=(bn.dgamma, "dgamma"), dbeta=(bn.dbeta, "dbeta"),
             x_test=(x2, "test input"), y_test=(y_test, "forward(x_test, False)"))

    x, x2 = rng.randn(3, 2, 2, 2), rng.randn(2, 2, 2, 2)
    gamma, beta = rng.uniform(0.5, 1.5, 8), rng.randn(8)
    dout = rng.randn(3, 2, 2, 2)
    bn = layers.BatchNormalization(gamma, beta)
    y = bn.forward(x, train_flg=True)
    dx = bn.backward(dout)
    y_test = bn.forward(x2, train_flg=False)
    rec.case("dlfs1/BatchNormalization_4d", SRC1 + " BatchNormalization",
             "(N, C, H, W) input (the book flattens it to (N, C*H*W)), running statistics from None "
             "(zeros): forward in training mode, backward, forward in test mode",
             x=(x, "input (N, C, H, W)"), gamma=(gamma, "gamma (C*H*W,)"), beta=(beta, "beta"),
             y_train=(y, "forward(x, True)"), running_mean=(bn.running_mean, "running_mean after"),
             running_var=(bn.running_var, "running_var after"), dout=(dout, "upstream gradient"),
             dx=(dx, "backward(dout)"), dgamma=(bn.dgamma, "dgamma"), dbeta=(bn.dbeta, "dbeta"),
             x_test=(x2, "test input"), y_test=(y_test, "forward(x_test, False)"))

    for case, x_shape, w_shape, stride, pad in [("Convolution", (2, 3, 6, 5), (4, 3, 3, 2), 1, 0),
                                                ("Convolution_stride2_pad1", (2, 3, 6, 5), (4, 3, 3, 3), 2, 1)]:
        x, W, b = rng.randn(*x_shape), rng.randn(*w_shape), rng.randn(w_shape[0])
        conv = layers.Convolution(W, b, stride=stride, pad=pad)
        y = conv.forward(x)
        dout = rng.randn(*y.shape)
        dx = conv.backward(dout)
        rec.case(f"dlfs1/{case}", SRC1 + " Convolution (im2col, col2im of common/util.py)",
                 f"stride {stride}, pad {pad}: forward(x) and backward(dout)",
                 x=(x, "input (N, C, H, W)"), W=(W, "filters (FN, C, FH, FW)"), b=(b, "bias"),
                 stride=(stride, "stride"), pad=(pad, "pad"), y=(y, "forward(x)"),
                 dout=(dout, "upstream gradient"), dx=(dx, "backward(dout)"), dW=(conv.dW, "dW"),
                 db=(conv.db, "db"))

    for case, x, size, stride, note in [
        ("Pooling", rng.randn(2, 3, 6, 6), 2, 2, "random input"),
        ("Pooling_overlap", rng.randn(2, 2, 7, 7), 3, 2, "3x3 windows, stride 2: they overlap"),
        ("Pooling_ties", rng.randint(0, 3, (2, 2, 6, 7)).astype(float), 2, 2,
         "integer input 0..2, many ties (the book sends dout to the first maximum); W = 7 leaves a column"),
    ]:
        pool = layers.Pooling(size, size, stride=stride)
        y = pool.forward(x)
        dout = rng.randn(*y.shape)
        dx = pool.backward(dout)
        rec.case(f"dlfs1/{case}", SRC1 + " Pooling", f"{size}x{size} max pooling, stride {stride}, {note}: "
                 "forward(x) and backward(dout)",
                 x=(x, "input (N, C, H, W)"), size=(size, "pool_h = pool_w"), stride=(stride, "stride"),
                 y=(y, "forward(x)"), dout=(dout, "upstream gradient"), dx=(dx, "backward(dout)"))


OPTIMIZERS = {  # the book's class name: its constructor arguments
    "SGD": {"lr": 0.1},
    "Momentum": {"lr": 0.05, "momentum": 0.9},
    "Nesterov": {"lr": 0.05, "momentum": 0.9},
    "AdaGrad": {"lr": 0.5},
    "RMSprop": {"lr": 0.05, "decay_rate": 0.99},
    "Adam": {"lr": 0.05, "beta1": 0.9, "beta2": 0.999},
}
OPT_STEPS = 60


def dlfs1_optimizers(rec: Record, optimizer) -> None:
    """Each optimizer for OPT_STEPS steps on f(W, b) = sum(a (W - W*)^2 / 2 + (W - W*)^4 / 20)
    + sum((b - b*)^2) / 2 + 0.1 sum(W) sum(b), the gradient taken at the current parameters."""
    rng = np.random.RandomState(2)
    W0, b0 = rng.randn(2, 3), rng.randn(3)
    W_star, b_star, a = rng.randn(2, 3), rng.randn(3), rng.uniform(0.5, 2.0, (2, 3))

    def grad(W, b):
        d = W - W_star
        return {"W": a * d + 0.2 * d ** 3 + 0.1 * b.sum(), "b": (b - b_star) + 0.1 * W.sum()}

    for name, kwargs in OPTIMIZERS.items():
        opt = getattr(optimizer, name)(**kwargs)
        params = {"W": W0.copy(), "b": b0.copy()}
        grads_seen, traj = {"W": [], "b": []}, {"W": [], "b": []}
        for _ in range(OPT_STEPS):
            g = grad(params["W"], params["b"])
            for k in g:
                grads_seen[k].append(g[k].copy())
            opt.update(params, g)
            for k in params:
                traj[k].append(params[k].copy())
        hyper = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        rec.case(f"dlfs1/{name}", f"DLFS1 common/optimizer.py {name}",
                 f"{name}({hyper}): {OPT_STEPS} update(params, grads) calls on params {{W (2, 3), b (3,)}}; "
                 "grads[k] is the gradient passed at step k (of a quadratic + quartic at the current params)",
                 W0=(W0, "W before the first step"), b0=(b0, "b before the first step"),
                 **{f"hyper_{k}": (v, f"the constructor's {k}") for k, v in kwargs.items()},
                 dW=(np.stack(grads_seen["W"]), "the gradient of W passed at each step"),
                 db=(np.stack(grads_seen["b"]), "the gradient of b passed at each step"),
                 W=(np.stack(traj["W"]), "W after each step"), b=(np.stack(traj["b"]), "b after each step"))


def _seeded(seed, fn, *args, **kwargs):
    np.random.seed(seed)
    return fn(*args, **kwargs)


def dlfs1_mlps(rec: Record, root: Path) -> None:
    mln = load_file(root, "common/multi_layer_net.py")
    mlne = load_file(root, "common/multi_layer_net_extend.py")
    rng = np.random.RandomState(3)
    x, t = rng.randn(4, 6), rng.randint(0, 3, 4)
    for activation in ("relu", "sigmoid"):
        np.random.seed(30)
        net = mln.MultiLayerNet(6, [5, 4], 3, activation=activation, weight_init_std=activation,
                                weight_decay_lambda=0.1)
        params = {k: v.copy() for k, v in net.params.items()}
        loss = net.loss(x, t)
        grads = net.gradient(x, t)
        rec.case(f"dlfs1/MultiLayerNet_{activation}", "DLFS1 common/multi_layer_net.py MultiLayerNet",
                 f"MultiLayerNet(6, [5, 4], 3, activation={activation!r}, weight_decay_lambda=0.1), "
                 "weights from its own init after np.random.seed(30): loss(x, t) and gradient(x, t)",
                 x=(x, "input"), t=(t, "labels"), loss=(loss, "loss(x, t), weight decay included"),
                 **{f"param_{k}": (v, f"params[{k!r}]") for k, v in params.items()},
                 **{f"grad_{k}": (v, f"gradient(x, t)[{k!r}]") for k, v in grads.items()})

    np.random.seed(31)
    net = mlne.MultiLayerNetExtend(6, [5, 4], 3, activation="relu", weight_init_std="relu",
                                   weight_decay_lambda=0.05, use_dropout=True, dropout_ration=0.3,
                                   use_batchnorm=True)
    for k in net.params:  # gamma, beta away from 1, 0 (in place: the layers hold these arrays)
        if k.startswith("gamma"):
            net.params[k][...] = rng.uniform(0.5, 1.5, net.params[k].shape)
        elif k.startswith("beta"):
            net.params[k][...] = rng.randn(*net.params[k].shape)
    params = {k: v.copy() for k, v in net.params.items()}
    loss = _seeded(32, copy.deepcopy(net).loss, x, t, train_flg=True)
    grads = _seeded(32, net.gradient, x, t)  # the same masks: the same draws after the same seed
    masks = {k: net.layers[k].mask for k in ("Dropout1", "Dropout2")}
    stats = {f"{s}{i}": getattr(net.layers[f"BatchNorm{i}"], s) for i in (1, 2)
             for s in ("running_mean", "running_var")}
    scores_test = net.predict(x, train_flg=False)
    loss_test = net.loss(x, t, train_flg=False)
    rec.case("dlfs1/MultiLayerNetExtend", "DLFS1 common/multi_layer_net_extend.py MultiLayerNetExtend",
             "MultiLayerNetExtend(6, [5, 4], 3, 'relu', weight_decay_lambda=0.05, use_dropout=True, "
             "dropout_ration=0.3, use_batchnorm=True), its init after np.random.seed(31), gamma/beta "
             "random: loss(x, t, train_flg=True) and gradient(x, t) (both after np.random.seed(32): the "
             "same dropout masks); then predict and loss in test mode with the running statistics",
             x=(x, "input"), t=(t, "labels"), loss=(loss, "loss(x, t, train_flg=True)"),
             **{f"param_{k}": (v, f"params[{k!r}]") for k, v in params.items()},
             **{f"grad_{k}": (v, f"gradient(x, t)[{k!r}]") for k, v in grads.items()},
             **{f"mask{i}": (masks[f"Dropout{i}"], f"Dropout{i}'s kept units") for i in (1, 2)},
             **{k: (v, f"BatchNorm{k[-1]}'s {k[:-1]} after one training forward") for k, v in stats.items()},
             scores_test=(scores_test, "predict(x, train_flg=False)"),
             loss_test=(loss_test, "loss(x, t, train_flg=False)"))


def dlfs1_convnets(rec: Record, root: Path) -> None:
    scn = load_file(root, "ch07/simple_convnet.py")
    dcn = load_file(root, "ch08/deep_convnet.py")
    rng = np.random.RandomState(4)

    x, t = rng.rand(3, 2, 10, 10), rng.randint(0, 4, 3)
    np.random.seed(40)
    conv_param = {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}
    net = scn.SimpleConvNet(input_dim=(2, 10, 10), conv_param=conv_param, hidden_size=5, output_size=4,
                            weight_init_std=0.3)
    params = {k: v.copy() for k, v in net.params.items()}
    loss = net.loss(x, t)
    grads = net.gradient(x, t)
    rec.case("dlfs1/SimpleConvNet", "DLFS1 ch07/simple_convnet.py SimpleConvNet",
             "SimpleConvNet(input_dim=(2, 10, 10), conv_param={filter_num: 3, filter_size: 3, pad: 0, "
             "stride: 1}, hidden_size=5, output_size=4, weight_init_std=0.3), its init after "
             "np.random.seed(40): loss(x, t) and gradient(x, t)",
             x=(x, "images (N, C, H, W)"), t=(t, "labels"), loss=(loss, "loss(x, t)"),
             **{f"param_{k}": (v, f"params[{k!r}]") for k, v in params.items()},
             **{f"grad_{k}": (v, f"gradient(x, t)[{k!r}]") for k, v in grads.items()})

    # DeepConvNet: the book's layers with fewer filters, on 12x12 images (a 2x2 map before the first
    # affine instead of 28x28's 4x4, so W7 has C6*2*2 rows: its __init__ assumes 28x28, but its
    # layers take any size); the weights are set by the book's own load_params
    filter_nums, hidden, classes = (2, 2, 3, 3, 4, 4), 6, 5
    pads = (1, 1, 1, 2, 1, 1)
    conv_params = [{"filter_num": f, "filter_size": 3, "pad": p, "stride": 1}
                   for f, p in zip(filter_nums, pads, strict=True)]
    x, t = rng.rand(2, 1, 12, 12), rng.randint(0, classes, 2)
    params, c = {}, 1
    for i, f in enumerate(filter_nums, start=1):
        params[f"W{i}"] = rng.randn(f, c, 3, 3) * np.sqrt(2.0 / (c * 9))
        params[f"b{i}"] = rng.randn(f) * 0.1
        c = f
    params["W7"] = rng.randn(c * 2 * 2, hidden) * np.sqrt(2.0 / (c * 4))
    params["b7"] = rng.randn(hidden) * 0.1
    params["W8"] = rng.randn(hidden, classes) * np.sqrt(2.0 / hidden)
    params["b8"] = rng.randn(classes) * 0.1
    net = dcn.DeepConvNet(input_dim=(1, 12, 12), **{f"conv_param_{i}": cp for i, cp in enumerate(conv_params, 1)},
                          hidden_size=hidden, output_size=classes)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "params.pkl"), "wb") as f:
            pickle.dump({k: v.copy() for k, v in params.items()}, f)
        net.load_params(os.path.join(tmp, "params.pkl"))
    loss = _seeded(41, copy.deepcopy(net).loss, x, t)
    grads = _seeded(41, net.gradient, x, t)
    masks = [layer.mask for layer in net.layers if isinstance(layer, dcn.Dropout)]
    scores_test = net.predict(x, train_flg=False)
    rec.case("dlfs1/DeepConvNet", "DLFS1 ch08/deep_convnet.py DeepConvNet",
             f"DeepConvNet(input_dim=(1, 12, 12), conv_param_1..6 with filter_num {list(filter_nums)} (the "
             f"book's sizes, pads and layers otherwise), hidden_size={hidden}, output_size={classes}) on "
             "12x12 images, "
             "weights (He-scaled, random biases) set by its load_params: loss(x, t) and gradient(x, t), "
             "both after np.random.seed(41) (the same dropout masks), and predict(x, train_flg=False)",
             x=(x, "images (N, 1, 12, 12)"), t=(t, "labels"), filter_nums=(np.array(filter_nums), "filters"),
             loss=(loss, "loss(x, t): training-mode dropout"),
             **{f"param_{k}": (v, f"params[{k!r}]") for k, v in params.items()},
             **{f"grad_{k}": (v, f"gradient(x, t)[{k!r}]") for k, v in grads.items()},
             mask1=(masks[0], "the first Dropout's kept units"), mask2=(masks[1], "the second Dropout's"),
             scores_test=(scores_test, "predict(x, train_flg=False)"))


def run_dlfs1(rec: Record, repo: Path) -> None:
    with book_code(repo) as root:
        import common.layers
        import common.optimizer

        dlfs1_layers(rec, common.layers)
        dlfs1_optimizers(rec, common.optimizer)
        dlfs1_mlps(rec, root)
        dlfs1_convnets(rec, root)


# ------------------------------------------------------------------------------------------------
# DLFS2 (float32 code, run in float64): common/time_layers.py and the LMs
# ------------------------------------------------------------------------------------------------

SRC2 = "DLFS2 common/time_layers.py"


def _to_float64(dtype):
    return np.float64 if dtype is not None and np.dtype(dtype) == np.float32 else dtype


class Float64Numpy(types.ModuleType):
    """numpy, except that ``empty``/``zeros`` with a float32 dtype and ``float32`` itself give
    float64: put in place of ``common.time_layers.np``, DLFS2's time layers compute in float64."""

    float32 = np.float64

    def __init__(self):
        super().__init__("numpy_as_float64")

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float, **kwargs):
        return np.empty(shape, _to_float64(dtype), **kwargs)

    @staticmethod
    def zeros(shape, dtype=float, **kwargs):
        return np.zeros(shape, _to_float64(dtype), **kwargs)


def f32(a):
    """`a` rounded to float32 and held in float64: the same number in both precisions."""
    return np.asarray(a, np.float32).astype(np.float64)


def _set_weights(model, arrays) -> None:
    """Replace a DLFS2 model's weights by `arrays` (in ``model.params`` order, a tied transposed
    weight given once, as ``None``) and its gradient buffers by zeros of the same dtype."""
    new = {}
    values = iter(arrays)
    for layer in model.layers:
        for i, p in enumerate(layer.params):
            if p.base is not None and id(p.base) in new:  # weight tying: W.T of an earlier weight
                value = next(values)
                if value is not None:
                    raise ValueError("_set_weights: give None for the tied weight")
                layer.params[i] = new[id(p.base)].T
            else:
                new[id(p)] = layer.params[i] = np.array(next(values))
            layer.grads[i] = np.zeros_like(layer.params[i])
        if hasattr(layer, "W"):  # TimeEmbedding keeps its W twice
            layer.W = layer.params[0]
    model.params = [p for layer in model.layers for p in layer.params]
    model.grads = [g for layer in model.layers for g in layer.grads]


def dlfs2_layers(rec: Record, TL) -> None:
    rng = np.random.RandomState(5)
    N, T, D, H, V = 2, 3, 3, 4, 6

    def weights(gates):
        return (f32(rng.randn(D, gates * H) / np.sqrt(D)), f32(rng.randn(H, gates * H) / np.sqrt(H)),
                f32(rng.randn(gates * H) * 0.5))

    for fam, gates, cell_cls, time_cls in [("RNN", 1, TL.RNN, TL.TimeRNN), ("LSTM", 4, TL.LSTM, TL.TimeLSTM),
                                           ("GRU", 3, TL.GRU, TL.TimeGRU)]:
        Wx, Wh, b = weights(gates)
        x, h0 = f32(rng.randn(N, D)), f32(rng.randn(N, H) * 0.5)
        c0 = f32(rng.randn(N, H) * 0.5)
        dh, dc = f32(rng.randn(N, H)), f32(rng.randn(N, H))
        cell = cell_cls(Wx, Wh, b)
        common = {"Wx": (Wx, "Wx"), "Wh": (Wh, "Wh"), "b": (b, "b")}
        if fam == "LSTM":
            h, c = cell.forward(x, h0, c0)
            dx, dh_prev, dc_prev = cell.backward(dh, dc)
            extra = {"c_prev": (c0, "c_prev"), "c": (c, "forward's c_next"), "dc": (dc, "dc_next"),
                     "dc_prev": (dc_prev, "backward's dc_prev")}
        else:
            h = cell.forward(x, h0)
            dx, dh_prev = cell.backward(dh)
            extra = {}
        rec.case(f"dlfs2/{fam}", f"{SRC2} {fam}", "one step: forward and backward",
                 **common, x=(x, "x (N, D)"), h_prev=(h0, "h_prev"), h=(h, "forward's h_next"),
                 dh=(dh, "dh_next"), dx=(dx, "backward's dx"), dh_prev=(dh_prev, "backward's dh_prev"),
                 dWx=(cell.grads[0], "grads[0]"), dWh=(cell.grads[1], "grads[1]"), db=(cell.grads[2], "grads[2]"),
                 **extra)

        xs, dhs = f32(rng.randn(N, T, D)), f32(rng.randn(N, T, H))
        layer = time_cls(Wx, Wh, b, stateful=True)
        if fam == "LSTM":
            layer.set_state(h0, c0)
        else:
            layer.set_state(h0)
        hs = layer.forward(xs)
        last = {"h_last": (layer.h, "the carried h after forward")}
        if fam == "LSTM":
            last["c_last"] = (layer.c, "the carried c after forward")
        dxs = layer.backward(dhs)
        rec.case(f"dlfs2/Time{fam}", f"{SRC2} Time{fam}",
                 "stateful=True, set_state(h0[, c0]) then forward(xs) and backward(dhs) (no gradient from "
                 "the future: truncated BPTT)",
                 **common, xs=(xs, "xs (N, T, D)"), h0=(h0, "initial h"),
                 **({"c0": (c0, "initial c")} if fam == "LSTM" else {}),
                 hs=(hs, "forward's hs"), **last, dhs=(dhs, "upstream gradient"), dxs=(dxs, "backward's dxs"),
                 dh0=(layer.dh, "the gradient w.r.t. the initial h (the layer's dh)"),
                 dWx=(layer.grads[0], "grads[0]"), dWh=(layer.grads[1], "grads[1]"), db=(layer.grads[2], "grads[2]"))

    W, xs = f32(rng.randn(V, D)), rng.randint(0, V, (N, T))
    xs[0, :2] = xs[1, 2] = 4  # a word read three times: its row sums three gradients
    dout = f32(rng.randn(N, T, D))
    emb = TL.TimeEmbedding(W)
    out = emb.forward(xs)
    emb.backward(dout)
    rec.case("dlfs2/TimeEmbedding", f"{SRC2} TimeEmbedding", "forward(xs) and backward(dout)",
             W=(W, "W (V, D)"), xs=(xs, "word ids (N, T)"), out=(out, "forward(xs)"),
             dout=(dout, "upstream gradient"), dW=(emb.grads[0], "grads[0]"))

    W, b, xs = f32(rng.randn(D, V)), f32(rng.randn(V)), f32(rng.randn(N, T, D))
    dout = f32(rng.randn(N, T, V))
    aff = TL.TimeAffine(W, b)
    out = aff.forward(xs)
    dxs = aff.backward(dout)
    rec.case("dlfs2/TimeAffine", f"{SRC2} TimeAffine", "forward(xs) and backward(dout)",
             W=(W, "W"), b=(b, "b"), xs=(xs, "xs (N, T, D)"), out=(out, "forward(xs)"),
             dout=(dout, "upstream gradient"), dxs=(dxs, "backward's dx"), dW=(aff.grads[0], "grads[0]"),
             db=(aff.grads[1], "grads[1]"))

    xs, ts = f32(rng.randn(N, T, V) * 2), rng.randint(0, V, (N, T))
    ts[1, 0] = ts[0, 2] = -1  # the book's ignore_label
    values = {"xs": (xs, "scores (N, T, V)"), "ts": (ts, "labels, -1 = ignore")}
    for tag, dout in (("", 1), ("_dout", 0.5)):
        swl = TL.TimeSoftmaxWithLoss()
        loss = swl.forward(xs.copy(), ts)
        values[f"loss{tag}"] = (loss, "forward(xs, ts): mean -log softmax over the counted labels")
        values[f"dxs{tag}"] = (swl.backward(dout), f"backward({dout})")
    rec.case("dlfs2/TimeSoftmaxWithLoss", f"{SRC2} TimeSoftmaxWithLoss",
             "forward(xs, ts) with two ignored labels, backward(1) and backward(0.5)", **values)

    for ratio in (0.5, 0.3):
        xs, dout = f32(rng.randn(N, T, H)), f32(rng.randn(N, T, H))
        drop = TL.TimeDropout(ratio)
        np.random.seed(50)
        ys = drop.forward(xs)
        dxs = drop.backward(dout)
        drop.train_flg = False
        ys_test = drop.forward(xs)
        rec.case(f"dlfs2/TimeDropout_{ratio}", f"{SRC2} TimeDropout",
                 f"dropout_ratio {ratio}: forward in training mode after np.random.seed(50), backward, "
                 "forward with train_flg False",
                 xs=(xs, "input"), kept=(drop.mask > 0, "the kept units, rand > ratio"),
                 mask=(drop.mask, "the book's mask: kept / (1 - ratio)"), ys=(ys, "forward(xs), training"),
                 dout=(dout, "upstream gradient"), dxs=(dxs, "backward(dout)"),
                 ys_test=(ys_test, "forward(xs), train_flg False"))


def _lm_weights(rng, V, D, H, layers):
    """Float32-representable weights in the books' model.params order (no tied weight)."""
    w = [f32(rng.randn(V, D) * 0.5)]
    sizes = [D] + [H] * (layers - 1)
    for d in sizes:
        w += [f32(rng.randn(d, 4 * H) / np.sqrt(d)), f32(rng.randn(H, 4 * H) / np.sqrt(H)),
              f32(rng.randn(4 * H) * 0.3)]
    return w


def dlfs2_models(rec: Record, root: Path, TL) -> None:
    simple = load_file(root, "ch05/simple_rnnlm.py")
    rnnlm = load_file(root, "ch06/rnnlm.py")
    better = load_file(root, "ch06/better_rnnlm.py")
    trainer = load_file(root, "common/trainer.py")
    rng = np.random.RandomState(6)
    N, T = 2, 3

    V, D, H = 7, 4, 5
    model = simple.SimpleRnnlm(V, D, H)
    weights = [f32(rng.randn(V, D) * 0.5), f32(rng.randn(D, H) / np.sqrt(D)), f32(rng.randn(H, H) / np.sqrt(H)),
               f32(rng.randn(H) * 0.3), f32(rng.randn(H, V) / np.sqrt(H)), f32(rng.randn(V) * 0.3)]
    _set_weights(model, weights)
    xs, ts = rng.randint(0, V, (N, T)), rng.randint(0, V, (N, T))
    loss = model.forward(xs, ts)
    model.backward()
    rec.case("dlfs2/SimpleRnnlm", "DLFS2 ch05/simple_rnnlm.py SimpleRnnlm",
             f"SimpleRnnlm(V={V}, D={D}, H={H}) with the given weights: forward(xs, ts) (loss) and backward()",
             **{f"param{i}": (w, f"params[{i}]") for i, w in enumerate(weights)},
             xs=(xs, "word ids"), ts=(ts, "labels"), loss=(loss, "forward(xs, ts)"),
             **{f"grad{i}": (g, f"grads[{i}]") for i, g in enumerate(model.grads)})

    weights = _lm_weights(rng, V, D, H, 1) + [f32(rng.randn(H, V) / np.sqrt(H)), f32(rng.randn(V) * 0.3)]
    batches = [(rng.randint(0, V, (N, T)), rng.randint(0, V, (N, T))) for _ in range(2)]
    for case, precision in (("Rnnlm", "float64"), ("Rnnlm_float32", "float32")):
        model = rnnlm.Rnnlm(V, D, H)
        if precision == "float64":
            _set_weights(model, weights)
        else:
            for p, w in zip(model.params, weights, strict=True):  # the book's own float32 buffers
                p[...] = w
        values = {f"param{i}": (w, f"params[{i}]") for i, w in enumerate(weights)}
        for k, (xs, ts) in enumerate(batches, start=1):
            loss = model.forward(xs, ts)
            model.backward()
            values |= {f"xs{k}": (xs, f"batch {k}'s word ids"), f"ts{k}": (ts, f"batch {k}'s labels"),
                       f"loss{k}": (loss, f"forward(xs{k}, ts{k})"),
                       f"h{k}": (model.lstm_layer.h, f"the LSTM's carried h after batch {k}"),
                       f"c{k}": (model.lstm_layer.c, f"the LSTM's carried c after batch {k}"),
                       **{f"grad{k}_{i}": (g.copy(), f"grads[{i}] after backward() on batch {k}")
                          for i, g in enumerate(model.grads)}}
        rec.case(f"dlfs2/{case}", "DLFS2 ch06/rnnlm.py Rnnlm",
                 f"Rnnlm(V={V}, D={D}, H={H}) in {precision}"
                 + (" (the book's own dtype)" if precision == "float32" else "")
                 + ", the given weights: two consecutive batches (stateful: batch 2 starts from batch 1's "
                 "h, c), forward (loss) and backward() on each",
                 **values)
        TL.np = np if precision == "float64" else Float64Numpy()  # the next run's precision

    V, H = 7, 5
    model = better.BetterRnnlm(V, H, H, dropout_ratio=0.5)
    weights = _lm_weights(rng, V, H, H, 2) + [f32(rng.randn(V) * 0.3)]
    _set_weights(model, weights[:7] + [None] + weights[7:])
    (xs, ts), (xs2, ts2) = [(rng.randint(0, V, (N, T)), rng.randint(0, V, (N, T))) for _ in range(2)]
    np.random.seed(60)
    loss = model.forward(xs, ts, train_flg=True)
    model.backward()
    kept = [layer.mask > 0 for layer in model.drop_layers]
    _, grads = trainer.remove_duplicate(model.params, [g.copy() for g in model.grads])
    h1 = [layer.h.copy() for layer in model.lstm_layers]
    loss_test = model.forward(xs2, ts2, train_flg=False)
    rec.case("dlfs2/BetterRnnlm", "DLFS2 ch06/better_rnnlm.py BetterRnnlm",
             f"BetterRnnlm(V={V}, D=H={H}, dropout_ratio=0.5) with the given weights (the output affine's "
             "W is the embedding's transpose): forward(xs, ts, train_flg=True) after np.random.seed(60) and "
             "backward(), grads merged by common/trainer.py remove_duplicate (the tied weight's gradient "
             "is the embedding's plus the affine's transposed); then batch 2 in test mode (its state "
             "carried from batch 1)",
             **{f"param{i}": (w, f"params[{i if i < 7 else i + 1}]") for i, w in enumerate(weights)},
             xs=(xs, "word ids"), ts=(ts, "labels"), loss=(loss, "forward(xs, ts, train_flg=True)"),
             **{f"kept{i}": (m, f"drop_layers[{i}]'s kept units") for i, m in enumerate(kept)},
             **{f"grad{i}": (g, "remove_duplicate(params, grads)[1][" + str(i) + "]") for i, g in enumerate(grads)},
             **{f"h1_{i + 1}": (h, f"LSTM {i + 1}'s carried h after batch 1") for i, h in enumerate(h1)},
             xs2=(xs2, "batch 2's word ids"), ts2=(ts2, "batch 2's labels"),
             loss_test=(loss_test, "forward(xs2, ts2, train_flg=False)"))


def _seq2seq_weights(rng, V, D, H, lstm_in, affine_in):
    """Float32-representable weights in the book's Seq2seq params order: encoder embed W, Wx, Wh, b;
    decoder embed W, Wx, Wh, b, affine W, b."""
    def lstm(d):
        return [f32(rng.randn(d, 4 * H) * 2 / np.sqrt(d)), f32(rng.randn(H, 4 * H) * 2 / np.sqrt(H)),
                f32(rng.randn(4 * H) * 0.3)]
    return ([f32(rng.randn(V, D)), *lstm(D), f32(rng.randn(V, D)), *lstm(lstm_in),
             f32(rng.randn(affine_in, V) * 3 / np.sqrt(affine_in)), f32(rng.randn(V) * 0.1)])


def dlfs2_seq2seq(rec: Record, root: Path) -> None:
    """Seq2seq, PeekySeq2seq (ch07) and AttentionSeq2seq (ch08): loss, backward, greedy generation."""
    sys.path.insert(0, str(root / "ch07"))  # peeky_seq2seq.py imports `seq2seq` from its folder
    try:
        seq = load_file(root, "ch07/seq2seq.py")
        peeky = load_file(root, "ch07/peeky_seq2seq.py")
        attention = load_file(root, "ch08/attention_seq2seq.py")
    finally:
        for name in [n for n in sys.modules if n in ("seq2seq", "ch07.seq2seq", "ch08.attention_layer")]:
            del sys.modules[name]
    rng = np.random.RandomState(7)
    N, T_q, T_a, V, D, H = 3, 5, 4, 8, 3, 4
    for case, cls, lstm_in, affine_in in (("Seq2seq", seq.Seq2seq, D, H),
                                          ("PeekySeq2seq", peeky.PeekySeq2seq, H + D, 2 * H),
                                          ("AttentionSeq2seq", attention.AttentionSeq2seq, D, 2 * H)):
        model = cls(V, D, H)
        weights = _seq2seq_weights(rng, V, D, H, lstm_in, affine_in)
        values = iter(weights)
        for layer in (model.encoder.embed, model.encoder.lstm, model.decoder.embed, model.decoder.lstm,
                      model.decoder.affine):  # float64 copies in place of the float32 weights
            layer.params[:] = [np.array(next(values)) for _ in layer.params]
            layer.grads[:] = [np.zeros_like(p) for p in layer.params]
            if hasattr(layer, "W"):
                layer.W = layer.params[0]
        model.params = model.encoder.params = model.encoder.embed.params + model.encoder.lstm.params
        model.params = model.params + [p for layer in (model.decoder.embed, model.decoder.lstm,
                                                       model.decoder.affine) for p in layer.params]
        grads = [layer.grads for layer in (model.encoder.embed, model.encoder.lstm, model.decoder.embed,
                                           model.decoder.lstm, model.decoder.affine)]
        xs, ts = rng.randint(0, V, (N, T_q)), rng.randint(0, V, (N, T_a))
        loss = model.forward(xs, ts)
        model.backward()
        generated = np.array([model.generate(xs[[n]], int(ts[n, 0]), T_a - 1) for n in range(N)])
        rec.case(f"dlfs2/{case}", f"DLFS2 {'ch08/attention_seq2seq.py' if 'Att' in case else 'ch07'} {case}",
                 f"{case}(V={V}, D={D}, H={H}) with the given weights: forward(xs, ts) (loss), backward(), "
                 f"then generate(xs[[n]], ts[n, 0], {T_a - 1}) for each question n",
                 **{f"param{i}": (w, f"params[{i}]") for i, w in enumerate(weights)},
                 xs=(xs, "questions"), ts=(ts, "answers, the start id first"), loss=(loss, "forward(xs, ts)"),
                 **{f"grad{i}": (g, f"grads[{i}]") for i, g in enumerate(g for gs in grads for g in gs)},
                 generated=(generated, "greedy answers, one row a question"))


def run_dlfs2(rec: Record, repo: Path) -> None:
    with book_code(repo) as root:
        os.environ.setdefault("MPLBACKEND", "Agg")  # common/trainer.py imports pyplot
        import common.time_layers as TL

        TL.np = Float64Numpy()  # before the models import it (their `np` is time_layers')
        dlfs2_layers(rec, TL)
        dlfs2_models(rec, root, TL)
        TL.np = Float64Numpy()
        dlfs2_seq2seq(rec, root)
    for name, a in rec.arrays.items():
        if a.dtype == np.float32 and not name.startswith("dlfs2/Rnnlm_float32/"):
            raise AssertionError(f"{name} is float32: the float64 patch missed a buffer")


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def build(dlfs1: Path, dlfs2: Path) -> tuple[dict, dict]:
    rec = Record()
    run_dlfs1(rec, dlfs1)
    run_dlfs2(rec, dlfs2)
    meta = {
        "about": "Inputs and outputs of the books' own classes (values only), written by "
                 "scripts/book_reference.py; read by tests/test_book_reference.py.",
        "books": {"DLFS1": {"repository": "oreilly-japan/deep-learning-from-scratch", **git_head(dlfs1)},
                  "DLFS2": {"repository": "oreilly-japan/deep-learning-from-scratch-2", **git_head(dlfs2)}},
        "numpy": np.__version__,
        "python": platform.python_version(),
        "generated": datetime.date.today().isoformat(),
        "precision": "DLFS1 float64 (its own); DLFS2 float64 by replacing common.time_layers.np (see the "
                     "script's docstring), except dlfs2/Rnnlm_float32, the book's own float32",
        "cases": rec.cases,
    }
    return rec.arrays, meta


def _compare(arrays: dict, old_path: Path) -> list[str]:
    problems = []
    with np.load(old_path) as old:
        if set(old.files) != set(arrays):
            problems.append(f"names differ: {sorted(set(old.files) ^ set(arrays))}")
        for name in sorted(set(old.files) & set(arrays)):
            a, b = arrays[name], old[name]
            if a.dtype != b.dtype or a.shape != b.shape:
                problems.append(f"{name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
            elif not np.array_equal(a, b):
                scale = np.max(np.abs(b)) or 1.0
                problems.append(f"{name}: max relative difference {np.max(np.abs(a - b)) / scale:.3g}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dlfs1", type=Path, default=DLFS1_MIRROR, help="DLFS1's git repository")
    parser.add_argument("--dlfs2", type=Path, default=DLFS2_MIRROR, help="DLFS2's git repository")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the .npz (the .json goes beside it)")
    parser.add_argument("--check", action="store_true",
                        help="regenerate in memory and compare with the files at --out; write nothing")
    args = parser.parse_args(argv)
    arrays, meta = build(args.dlfs1, args.dlfs2)
    json_path = args.out.with_suffix(".json")
    if args.check:
        problems = _compare(arrays, args.out)
        old = json.loads(json_path.read_text())
        for key in meta:
            if key != "generated" and old.get(key) != meta[key]:
                problems.append(f"{json_path.name}: {key!r} differs")
        with tempfile.TemporaryDirectory() as tmp:
            write_npz(Path(tmp) / "x.npz", arrays)
            same_bytes = (Path(tmp) / "x.npz").read_bytes() == args.out.read_bytes()
        print(f"{len(arrays)} arrays, {len(meta['cases'])} cases; .npz bytes "
              f"{'identical' if same_bytes else 'differ'}")
        for p in problems:
            print("  " + p)
        return 0 if same_bytes and not problems else 1
    write_npz(args.out, arrays)
    json_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(arrays)} arrays) and {json_path.name} "
          f"({len(meta['cases'])} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
