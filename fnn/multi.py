"""Many models in one compiled program: `jax.vmap` over keys and hyper-parameters (DLFS1 §6.2–6.5).

Chapter 6 trains families of networks that differ only in a hyper-parameter: 16 weight scales
with and without batch norm (§6.3.2), 100 random (learning rate, weight decay) pairs (§6.5.3).
Where they share their shapes, `fit_many` trains them all at once::

    fit_many(model, optimizer, (x, t), keys, hparams=hp, epochs=E, batch_size=B, eval_data=...)

This is `fnn.train.fit` with a leading model axis: given `fit`'s data, and no hyper-parameters,
it trains M seeds of one model and returns `fit`'s history with an axis M in front::

    keys = jax.vmap(jax.random.key)(jnp.arange(16))          # model m is fit(key=jax.random.key(m))
    ts, h = fit_many(cnn.simple_convnet(), adam(1e-3), ((x, t), (xt, tt)), keys, epochs=E)
    h["test_acc"]                                             # (16, E)

* ``keys`` (M,): one `jax.random` key per model, M models. Model m does exactly what
  ``fnn.train.fit(..., key=keys[m])`` does: its init key and run key come from splitting its key,
  epoch e (1, 2, ...) shuffles and draws dropout masks from ``fold_in(run_key, e)``, and each epoch
  is `fnn.step.make_epoch` (the same step, the same NaN guard). Models do not share batches.
* ``hparams``: a pytree whose leaves have a leading axis M (or None). `model` and `optimizer` are
  either fixed (a `Model`, an optax ``GradientTransformation``) or functions ``hp -> Model`` /
  ``hp -> GradientTransformation`` of one model's slice of `hparams`, called under `vmap` with
  traced values (``lambda hp: fnn.optim.sgd(hp["lr"])``, ``lambda hp: mlp.model(...,
  weight_init=hp["std"])``).

The whole run, E epochs of scanned steps plus the evaluations after each epoch, for all M models,
is one `jax.jit` of `jax.vmap` of a `lax.scan`: one compilation, no host round trip. The data is
shared (not copied per model). Shapes: M models, E epochs, S steps an epoch (``N // B``).

Speed (``scripts/bench_vmap.py`` measures it): one program instead of M is one compilation and,
where one model leaves the device idle (a GPU, small models), up to M times the samples a second
(an H100 measured 12-14x for the MLP at M = 16, 2.5-3.2x for SimpleConvNet); on 2 CPU cores a
batch-100 step already keeps the cores busy and M models together take about as long as M one
after the other (0.89-0.96x). There, vmapped conv nets may prefer ``conv="im2col"``: `vmap` turns
an XLA convolution, whose filters then differ per model, into a grouped convolution that XLA:CPU
ran ~3x slower than M separate ones (SimpleConvNet on the "lax" kernel).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import Array
from jax.sharding import Mesh

from fnn import parallel
from fnn._checks import check_data, check_positive_int, check_set
from fnn.models._model import Model
from fnn.step import init_train_state, make_epoch, make_evaluate

Builder = Callable[[Any], Any]


def _build(what, hp, kind):
    if isinstance(what, (Model, optax.GradientTransformation)):
        return what
    if callable(what):
        return what(hp)
    raise TypeError(f"fit_many: {kind} is {type(what).__name__}, expected a {kind} or a function "
                    f"of the hyper-parameters returning one")


def _num_models(keys, hparams) -> int:
    if not hasattr(keys, "shape") or keys.ndim != (1 if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
                                                    else 2):
        raise ValueError(f"fit_many: keys has shape {getattr(keys, 'shape', None)}, expected (M,) "
                         f"jax.random keys (jax.random.split(key, M))")
    M = keys.shape[0]
    for path, leaf in jax.tree_util.tree_flatten_with_path(hparams)[0]:
        if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != M:
            raise ValueError(f"fit_many: hparams{jax.tree_util.keystr(path)} has shape "
                             f"{jnp.shape(leaf)}, expected a leading axis of {M} (one per key)")
    return M


def _scores(model, keys, hparams, x, name: str) -> jax.ShapeDtypeStruct:
    """The shape and dtype of model 0's scores on x (traced, nothing computed)."""
    def scores(key, hp, xi):
        m = _build(model, hp, "Model")
        params, state = m.init(jax.random.split(key)[0])
        return m.apply(params, state, xi)[0]
    hp0 = jax.tree_util.tree_map(lambda a: a[0], hparams)
    xs = jax.ShapeDtypeStruct(x.shape, jax.dtypes.canonicalize_dtype(x.dtype))
    try:
        return jax.eval_shape(scores, keys[0], hp0, xs)
    except (ValueError, TypeError) as e:  # the model refuses x's shape or dtype: say which set
        raise type(e)(f"fit_many ({name} data): {e}") from None


def make_fit_many(model: Model | Builder, optimizer: optax.GradientTransformation | Builder, *,
                  epochs: int, batch_size: int, num_batches: int | None = None,
                  grad: str = "autodiff", eval_names: tuple[str, ...] = (),
                  eval_batch_size: int = 1000):
    """The jitted program behind `fit_many`:
    ``run(keys, hparams, x, t, eval_sets) -> (train_states, history)`` (see `fit_many`)."""

    def one(key, hp, x, t, eval_sets):
        m = _build(model, hp, "Model")
        opt = _build(optimizer, hp, "GradientTransformation")
        init_key, run_key = jax.random.split(key)
        ts = init_train_state(m, opt, init_key)
        epoch = make_epoch(m, opt, batch_size=batch_size, grad=grad, num_batches=num_batches)
        evaluate = make_evaluate(m, batch_size=eval_batch_size)

        def body(ts, e):
            ts, metrics = epoch(ts, x, t, jax.random.fold_in(run_key, e))
            ev = {name: evaluate(ts.params, ts.state, xe, te)
                  for name, (xe, te) in zip(eval_names, eval_sets, strict=True)}
            return ts, (metrics["loss"], jnp.all(metrics["finite"]), ev)

        ts, (step_loss, finite, ev) = jax.lax.scan(body, ts, jnp.arange(1, epochs + 1))
        history = {"step_loss": step_loss.reshape(-1), "finite": finite}
        for name in eval_names:
            history[f"{name}_loss"] = ev[name]["loss"]
            history[f"{name}_acc"] = ev[name]["accuracy"]
        return ts, history

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None, None, None)))


def fit_many(model: Model | Builder, optimizer: optax.GradientTransformation | Builder, data,
             keys: Array, *, hparams: Any = None, epochs: int, batch_size: int = 100,
             num_batches: int | None = None, grad: str = "autodiff",
             eval_data: Mapping[str, tuple[Array, Array]] | None = None,
             eval_batch_size: int = 1000, devices: int | Sequence[jax.Device] | Mesh | None = None):
    """Train M models at once, one per key (see the module docstring): `fnn.train.fit` with a
    leading model axis.

    `data` is ``(x_train, t_train)``, or `fit`'s ``((x_train, t_train), (x_test, t_test))``.
    `epochs` epochs of ``num_batches`` (default ``N // batch_size``) steps each. After every epoch,
    each set of `eval_data` (e.g. ``{"train": (x, t), "val": (xv, tv)}``) is evaluated in eval
    mode; with `fit`'s form of `data` the default `eval_data` is ``{"train": ..., "test": ...}``.
    `hparams` may be None (every model the same but for its key: M seeds).

    Returns ``(train_states, history)``: the `fnn.step.TrainState` of every model stacked on a
    leading axis M, and a dict whose arrays all have a leading axis M (`index` takes model m's):

    * ``step_loss`` (M, E*S) every step's mini-batch loss; ``finite`` (M, E) whether every step of
      that epoch was finite (a refused step leaves the model as it was, `fnn.step.make_step`);
    * ``epoch``, ``step`` (M, E) as in `fit` (1, 2, ... and the steps done after each epoch);
    * ``<name>_loss``, ``<name>_acc`` (M, E) per eval set, except that with `fit`'s form of `data`
      ``train_loss`` is what `fit` reports: the epoch's mean mini-batch loss (the "train" set is
      evaluated for its accuracy, as `fit` does);
    * ``seconds`` (training and evaluation, compilation excluded) and ``compile_seconds``
      (tracing and compiling the one program): floats, for all M models together.

    `devices` (as `fnn.train.fit` takes it, `fnn.parallel`) splits the M models over the devices,
    M a multiple of their number: each device trains its models on its own copy of the data (no
    batch is cut, no gradient summed across devices), and the results come back whole to every
    device (and every process). Each model's numbers are those of a one-device run, up to float
    rounding.

    With `fit`'s form of `data`, model m's history holds `fit`'s fields with `fit`'s meanings
    (``fit(..., key=keys[m])`` gives the same numbers, as arrays instead of lists).

    The data is checked as `fit` checks it, once, on the host, before the one program is compiled
    (`fnn._checks.check_set`: NaN/inf named with the set and the first bad index, labels in range in
    their own dtype, soft targets that are distributions, a warning for raw pixels); inside the
    program no value check can run (an out-of-range label would be clamped).
    """
    fit_form = isinstance(data, (tuple, list)) and len(data) == 2 and all(
        isinstance(d, (tuple, list)) for d in data)
    if fit_form:
        (x, t), test = data
        eval_data = {"train": (x, t), "test": tuple(test), **dict(eval_data or {})}
    else:
        x, t = data
    check_data("fit_many", "train", x, t)
    eval_data = dict(eval_data or {})
    for name, (xe, te) in eval_data.items():
        check_data("fit_many", name, xe, te)
    M = _num_models(keys, hparams)
    if hparams is None:
        hparams = jnp.zeros((M,))
    for name, (xe, te) in {"train": (x, t), **eval_data}.items():  # values, once, before any cast
        check_set("fit_many", name, xe, te, _scores(model, keys, hparams, xe, name))
    epochs = check_positive_int("fit_many", "epochs", epochs)
    batch_size = check_positive_int("fit_many", "batch_size", batch_size)
    if batch_size > x.shape[0]:
        raise ValueError(f"fit_many: batch_size is {batch_size}, larger than the training set "
                         f"({x.shape[0]} samples)")
    S = x.shape[0] // batch_size if num_batches is None else num_batches
    run = make_fit_many(model, optimizer, epochs=epochs, batch_size=batch_size,
                        num_batches=num_batches, grad=grad, eval_names=tuple(eval_data),
                        eval_batch_size=eval_batch_size)
    args = (keys, hparams, jnp.asarray(x), jnp.asarray(t),
            tuple((jnp.asarray(xe), jnp.asarray(te)) for xe, te in eval_data.values()))
    mesh = parallel.batch_mesh(devices, "fit_many")  # None: one device
    if mesh is not None:  # the models split over the devices, the data on every one, results on every one
        if M % parallel.num_shards(mesh):
            raise ValueError(f"fit_many: keys holds {M} models, expected a multiple of "
                             f"{parallel.num_shards(mesh)} (the devices of devices=, which each train M / n)")
        args = (*parallel.split(args[:2], mesh), *parallel.replicate(args[2:], mesh))
        run = jax.jit(run, out_shardings=parallel.replicated(mesh))
    t0 = time.perf_counter()
    compiled = run.lower(*args).compile()
    t1 = time.perf_counter()
    train_states, history = jax.block_until_ready(compiled(*args))
    t2 = time.perf_counter()
    epoch = jnp.broadcast_to(jnp.arange(1, epochs + 1), (M, epochs))
    history.update(epoch=epoch, step=epoch * S, seconds=t2 - t1, compile_seconds=t1 - t0)
    if fit_form:
        history["train_loss"] = history["step_loss"].reshape(M, epochs, S).mean(-1)
    return train_states, history


def index(tree: Any, m: int) -> Any:
    """Model m's slice of a stacked pytree (a `fit_many` train state or history); leaves without
    a model axis (the history's ``seconds``, Python floats) stay as they are."""
    return jax.tree_util.tree_map(lambda a: a[m] if jnp.ndim(a) else a, tree)
