"""Training: one jitted step for every model, an epoch as one compiled program, and `fit`.

The book's training loop (DLFS1 §4.5.2, ``train_neuralnet.py``; ``common/trainer.py``) made pure:

    step(ts, (x, t), key) -> (ts, {"loss": loss})

`ts` is a `TrainState` (params, model state, optimizer state). The gradient comes from
``grad="autodiff"`` (``jax.value_and_grad`` of ``model.loss``) or ``grad="manual"`` (the book's
backprop, ``model.manual_grad``); the optimizer is any optax ``GradientTransformation``.

An epoch shuffles the training set and runs one `lax.scan` over its mini-batches inside a single
jitted call, with the train state's buffers donated: no Python loop and no host round trip per step.
The mini-batches of an epoch are drawn without replacement and the last ``N % batch_size`` samples of
the shuffled order wait for the next epoch (the book draws each batch independently with
``np.random.choice``; an epoch here sees every sample at most once).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from tqdm.auto import tqdm

from fnn import functions as F
from fnn._checks import check_floating, check_labels
from fnn.models._model import Model, Params, State

GRADS = ("autodiff", "manual")


class TrainState(NamedTuple):
    """Everything a training run carries from step to step."""

    params: Params      # the model's trainable pytree
    state: State        # the model's non-trained state ({} for most models)
    opt_state: Any      # the optimizer's state


def init_train_state(model: Model, optimizer: optax.GradientTransformation, key: Array) -> TrainState:
    """Initialise a model's parameters and state, and the optimizer's state for them."""
    params, state = model.init(key)
    return TrainState(params, state, optimizer.init(params))


def value_and_grad(model: Model, grad: str = "autodiff") -> Callable[..., tuple[Array, Params, State]]:
    """``f(params, state, x, t, *, key) -> (loss, grads, state)`` by the chosen gradient path."""
    if grad == "manual":
        return model.manual_grad
    if grad != "autodiff":
        raise ValueError(f"value_and_grad: grad is {grad!r}, expected one of {GRADS}")
    vg = jax.value_and_grad(model.loss, has_aux=True)

    def autodiff(params, state, x, t, *, key=None):
        (loss, new_state), grads = vg(params, state, x, t, key=key)
        return loss, grads, new_state

    return autodiff


def make_step(model: Model, optimizer: optax.GradientTransformation, *, grad: str = "autodiff"):
    """The training step ``step(ts, (x, t), key) -> (ts, metrics)``: gradient, then optimizer update.

    Pure and not jitted: jit it, scan it (`make_epoch`) or vmap it as you need.
    """
    loss_and_grads = value_and_grad(model, grad)

    def step(ts: TrainState, batch: tuple[Array, Array], key: Array):
        x, t = batch
        loss, grads, state = loss_and_grads(ts.params, ts.state, x, t, key=key)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        params = optax.apply_updates(ts.params, updates)
        return TrainState(params, state, opt_state), {"loss": loss}

    return step


def make_epoch(model: Model, optimizer: optax.GradientTransformation, *, batch_size: int,
               grad: str = "autodiff", num_batches: int | None = None):
    """A jitted ``epoch(ts, x, t, key) -> (ts, metrics)`` over the whole training set (x, t).

    Shuffles with `key`, then scans `step` over ``num_batches`` (default ``N // batch_size``)
    mini-batches; ``metrics["loss"]`` has one entry a step. `ts` is donated.
    """
    step = make_step(model, optimizer, grad=grad)

    def epoch(ts: TrainState, x: Array, t: Array, key: Array):
        N = x.shape[0]
        nb = N // batch_size if num_batches is None else num_batches
        perm_key, step_key = jax.random.split(key)
        order = jax.random.permutation(perm_key, N)[: nb * batch_size]
        batches = order.reshape(nb, batch_size)  # (nb, B) sample indices
        keys = jax.random.split(step_key, nb)

        def body(ts, inputs):
            idx, k = inputs
            return step(ts, (x[idx], t[idx]), k)

        return jax.lax.scan(body, ts, (batches, keys))

    return jax.jit(epoch, donate_argnums=0)


def make_evaluate(model: Model, *, batch_size: int = 1000):
    """A jitted ``evaluate(params, state, x, t) -> {"loss", "accuracy"}`` over a whole data set.

    Runs `model.apply` (eval mode) in batches of `batch_size` under one `lax.scan`; the last batch
    is padded and the padding masked out. Scores (N, ..., C) with labels (N, ...) or one-hot: the
    loss and accuracy average over every position.
    """
    def evaluate(params: Params, state: State, x: Array, t: Array) -> dict[str, Array]:
        N = x.shape[0]
        B = min(batch_size, N)
        nb = math.ceil(N / B)
        pad = nb * B - N
        xb = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(nb, B, *x.shape[1:])
        tb = jnp.pad(t, [(0, pad)] + [(0, 0)] * (t.ndim - 1)).reshape(nb, B, *t.shape[1:])
        mask = (jnp.arange(nb * B) < N).reshape(nb, B)

        def body(totals, inputs):
            xi, ti, mi = inputs
            scores, _ = model.apply(params, state, xi, train=False)
            logp = F.log_softmax(scores.astype(jnp.float32) if scores.dtype.itemsize < 4 else scores)
            one_hot = ti.shape == scores.shape
            nll = -jnp.sum(ti * logp, -1) if one_hot else -jnp.take_along_axis(
                logp, ti[..., None], axis=-1)[..., 0]
            labels = jnp.argmax(ti, -1) if one_hot else ti
            correct = (jnp.argmax(scores, -1) == labels).astype(logp.dtype)
            per_sample = nll.reshape(B, -1).mean(1), correct.reshape(B, -1).mean(1)
            return (totals[0] + jnp.sum(per_sample[0] * mi),
                    totals[1] + jnp.sum(per_sample[1] * mi)), None

        zero = jnp.zeros((), jnp.result_type(x.dtype, jnp.float32))
        (loss_sum, correct_sum), _ = jax.lax.scan(body, (zero, zero), (xb, tb, mask))
        return {"loss": loss_sum / N, "accuracy": correct_sum / N}

    return jax.jit(evaluate)


def check_data(fn: str, name: str, x, t) -> None:
    """Validate a data set (x, t): floating x with a sample axis, labels that fit `t`."""
    for arr, arg in ((x, f"{name} x"), (t, f"{name} t")):
        if not hasattr(arr, "shape"):
            raise TypeError(f"{fn}: {arg} is a {type(arr).__name__}, expected an array")
    check_floating(fn, f"{name} x", x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{fn}: {name} x has shape {tuple(x.shape)}, expected (N, ...) with N >= 1")
    if t.shape[:1] != x.shape[:1]:
        raise ValueError(f"{fn}: {name} t has {t.shape[0] if t.ndim else 'no'} samples (shape "
                         f"{tuple(t.shape)}), expected {x.shape[0]} to match x {tuple(x.shape)}")


def fit(model: Model, optimizer: optax.GradientTransformation, data, *, key: Array,
        epochs: int | None = None, steps: int | None = None, batch_size: int = 100,
        grad: str = "autodiff", eval_batch_size: int = 1000, progress: bool = True,
        train_state: TrainState | None = None, desc: str | None = None):
    """Train `model` on ``data = ((x_train, t_train), (x_test, t_test))`` (DLFS1 §4.5.2–4.5.3).

    Give `epochs`, or `steps` (the book counts iterations: ``steps=10000`` with batch 100 on
    60,000 samples is 16 epochs and 400 steps). After every epoch the train and test sets are
    evaluated (the book's "train acc, test acc" lines), shown on a tqdm bar.

    Returns ``(train_state, history)``; history holds per-epoch ``epoch, step, train_loss,
    train_acc, test_loss, test_acc`` lists, every step's loss in ``step_loss``, and ``seconds``
    (training only, evaluation excluded, first-epoch compile included) and ``eval_seconds``.
    Pass `train_state` to continue a run instead of initialising a new one.
    """
    (x_train, t_train), (x_test, t_test) = data
    check_data("fit", "train", x_train, t_train)
    check_data("fit", "test", x_test, t_test)
    if grad not in GRADS:
        raise ValueError(f"fit: grad is {grad!r}, expected one of {GRADS}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"fit: batch_size is {batch_size!r}, expected a positive integer")
    N = x_train.shape[0]
    if batch_size > N:
        raise ValueError(f"fit: batch_size is {batch_size}, larger than the training set "
                         f"({N} samples)")
    per_epoch = N // batch_size
    if (epochs is None) == (steps is None):
        raise ValueError(f"fit: give exactly one of epochs and steps (got epochs={epochs!r}, "
                         f"steps={steps!r})")
    if steps is None:
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"fit: epochs is {epochs!r}, expected a positive integer")
        steps = epochs * per_epoch
    elif not isinstance(steps, int) or steps < 1:
        raise ValueError(f"fit: steps is {steps!r}, expected a positive integer")

    x_train, t_train, x_test, t_test = (jnp.asarray(a) for a in (x_train, t_train, x_test, t_test))
    init_key, key = jax.random.split(key)
    ts = train_state if train_state is not None else init_train_state(model, optimizer, init_key)
    _check_labels_against_model(model, ts, x_train, t_train, "train")
    _check_labels_against_model(model, ts, x_test, t_test, "test")

    epoch_fns: dict[int, Callable] = {}
    evaluate = make_evaluate(model, batch_size=eval_batch_size)
    history: dict[str, list] = {k: [] for k in ("epoch", "step", "train_loss", "train_acc",
                                                 "test_loss", "test_acc")}
    step_losses, done, train_seconds, eval_seconds = [], 0, 0.0, 0.0
    n_epochs = math.ceil(steps / per_epoch)
    bar = tqdm(range(1, n_epochs + 1), desc=desc or model.name, unit="epoch", disable=not progress)
    for epoch in bar:
        nb = min(per_epoch, steps - done)
        if nb not in epoch_fns:
            epoch_fns[nb] = make_epoch(model, optimizer, batch_size=batch_size, grad=grad,
                                       num_batches=nb)
        key, k = jax.random.split(key)
        t0 = time.perf_counter()
        ts, metrics = epoch_fns[nb](ts, x_train, t_train, k)
        losses = np.asarray(metrics["loss"])  # the one host transfer of the epoch
        train_seconds += time.perf_counter() - t0
        done += nb
        if not np.all(np.isfinite(losses)):
            i = int(np.argmin(np.isfinite(losses)))
            raise FloatingPointError(f"fit: the loss became {losses[i]} at step {done - nb + i + 1} "
                                     f"(epoch {epoch}); lower the learning rate or check the data")
        t0 = time.perf_counter()
        tr = evaluate(ts.params, ts.state, x_train, t_train)
        te = evaluate(ts.params, ts.state, x_test, t_test)
        tr, te = jax.device_get((tr, te))
        eval_seconds += time.perf_counter() - t0
        step_losses.append(losses)
        for k_, v in (("epoch", epoch), ("step", done), ("train_loss", float(losses.mean())),
                      ("train_acc", float(tr["accuracy"])), ("test_loss", float(te["loss"])),
                      ("test_acc", float(te["accuracy"]))):
            history[k_].append(v)
        bar.set_postfix(loss=f"{losses.mean():.4f}", train_acc=f"{tr['accuracy']:.4f}",
                        test_acc=f"{te['accuracy']:.4f}")
    history["step_loss"] = np.concatenate(step_losses).tolist()
    history["seconds"] = train_seconds
    history["eval_seconds"] = eval_seconds
    return ts, history


def _check_labels_against_model(model: Model, ts: TrainState, x: Array, t: Array,
                                name: str) -> None:
    """Trace the model on x's shape (no compute) and check that the labels t fit its scores."""
    scores = jax.eval_shape(lambda p, s, xi: model.apply(p, s, xi)[0], ts.params, ts.state, x)
    check_labels(f"fit ({name} data)", t, jax.ShapeDtypeStruct(scores.shape, scores.dtype))
