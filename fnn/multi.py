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
  `fit_many` checks, as `make_epoch` does, once at the end of each epoch, and runs a chunk of
  epochs again with every step checked only when a model's loss, gradient or final parameters
  there are not finite (`make_fit_many` checks every step).
* ``hparams``: a pytree whose leaves have a leading axis M (or None). `model` and `optimizer` are
  either fixed (a `Model`, an optax ``GradientTransformation``) or functions ``hp -> Model`` /
  ``hp -> GradientTransformation`` of one model's slice of `hparams`, called under `vmap` with
  traced values (``lambda hp: fnn.optim.sgd(hp["lr"])``, ``lambda hp: mlp.model(...,
  weight_init=hp["std"])``).

The whole run, E epochs of scanned steps plus the evaluations after each epoch, for all M models,
is one `jax.jit` program (`make_fit_many`), a `lax.scan` over epochs of one `jax.vmap`-ed epoch:
one compilation, no host round trip. `fit_many` runs the same epochs as a loop whose bounds are
arguments, so one compiled program runs them in up to `PROGRESS_CALLS` calls with the progress
(`fnn.progress`) shown between them. The data is shared (not copied per model). Shapes: M models,
E epochs, S steps an epoch (``N // B``).

Speed (``scripts/bench_vmap.py`` measures it): one program instead of M is one compilation and,
where one model leaves the device idle (a GPU, small models), up to M times the samples a second
(an H100 measured 12-14x for the MLP at M = 16, 2.5-3.2x for SimpleConvNet); on 2 CPU cores a
batch-100 step already keeps the cores busy and M models together take about as long as M one
after the other (0.89-0.96x). There, vmapped conv nets may prefer ``conv="im2col"``: `vmap` turns
an XLA convolution, whose filters then differ per model, into a grouped convolution that XLA:CPU
ran ~3x slower than M separate ones (SimpleConvNet on the "lax" kernel).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import Array
from jax.sharding import Mesh

from fnn import compile_cache, parallel
from fnn._checks import check_data, check_positive_int, check_set
from fnn.models._model import Model
from fnn.progress import bar as progress_bar
from fnn.progress import mode as progress_mode
from fnn.step import init_train_state, make_epoch, make_evaluate

__all__ = ["PROGRESS_CALLS", "Builder", "EpochProgress", "fit_many", "index", "make_fit_many"]

Builder = Callable[[Any], Any]
# At most this many times a run shows `fit_many`'s progress (every ceil(E / 20)-th epoch).
PROGRESS_CALLS = 20


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
                  eval_batch_size: int = 1000, on_epoch: Callable | None = None):
    """The jitted program behind `fit_many`:
    ``run(keys, hparams, x, t, eval_sets) -> (train_states, history)`` (see `fit_many`).

    The models are initialised together, then a `lax.scan` over epochs runs one epoch of all M
    models (a `vmap`) at a time. `on_epoch`, if given, is called on the host as
    ``on_epoch(epoch, loss, accuracy)``: the epoch (1, 2, ...), the mean over models of its mean
    mini-batch loss, and ``{name: mean accuracy over models}`` per eval set, through
    `jax.debug.callback`, after every ``ceil(epochs / PROGRESS_CALLS)``-th epoch and the last.
    The numbers are the same with or without it; but each call costs (measured on 2 busy CPU
    cores, 100 MLPs: ~30 ms of CPU time, mostly XLA's threads waiting), hence at most
    `PROGRESS_CALLS` a run, and JAX's persistent compile cache does not keep a program that calls
    the host.
    """
    init, every_model = _parts(model, optimizer, batch_size=batch_size, num_batches=num_batches, grad=grad,
                               eval_names=eval_names, eval_batch_size=eval_batch_size)
    every = math.ceil(epochs / PROGRESS_CALLS)

    def run(keys, hparams, x, t, eval_sets):
        ts, run_keys = init(keys, hparams)

        def body(ts, e):
            ts, out, _ = every_model(ts, run_keys, hparams, e, x, t, eval_sets)  # each step checked
            if on_epoch is not None:  # after every `every`-th epoch and the last
                loss, _, ev = out
                jax.lax.cond((e % every == 0) | (e == epochs), lambda: jax.debug.callback(
                    on_epoch, e, jnp.mean(loss), {name: jnp.mean(ev[name]["accuracy"]) for name in eval_names}),
                    lambda: None)
            return ts, out

        ts, out = jax.lax.scan(body, ts, jnp.arange(1, epochs + 1))
        return ts, _history(out, eval_names)

    return jax.jit(run)


def _parts(model, optimizer, *, batch_size, num_batches, grad, eval_names, eval_batch_size, guard="step"):
    """`make_fit_many`'s two pieces, vmapped over the models: ``init(keys, hparams) -> (train_states,
    run_keys)`` and ``every_model(train_states, run_keys, hparams, e, x, t, eval_sets) -> (train_states,
    (step losses, finite, evaluations), trusted)`` for epoch e. ``guard="step"``: each step checked
    (`fnn.step.make_step`), `trusted` True; ``"end"``: the steps unchecked, `trusted` (M,) says
    whether each model's losses, gradients and final parameters are finite (`fnn.step._Scan`), and where one is
    not, the caller runs the epoch again with ``"step"``."""

    def build(hp):
        return _build(model, hp, "Model"), _build(optimizer, hp, "GradientTransformation")

    def init(key, hp):
        m, opt = build(hp)
        init_key, run_key = jax.random.split(key)
        return init_train_state(m, opt, init_key), run_key

    def one_epoch(ts, run_key, hp, e, x, t, eval_sets):
        m, opt = build(hp)
        epoch = make_epoch(m, opt, batch_size=batch_size, grad=grad, num_batches=num_batches)
        evaluate = make_evaluate(m, batch_size=eval_batch_size)
        if guard == "end":
            ts, metrics, trusted = epoch.unchecked(ts, x, t, jax.random.fold_in(run_key, e))
        else:
            ts, metrics = epoch(ts, x, t, jax.random.fold_in(run_key, e))
            trusted = jnp.ones((), bool)
        ev = {name: evaluate(ts.params, ts.state, xe, te)
              for name, (xe, te) in zip(eval_names, eval_sets, strict=True)}
        return ts, (metrics["loss"], jnp.all(metrics["finite"]), ev), trusted

    return jax.vmap(init), jax.vmap(one_epoch, in_axes=(0, 0, 0, None, None, None, None))


def _history(out, eval_names) -> dict:
    """The epochs' outputs, (E, M, ...) as the scan stacks them, as the history's (M, E, ...) fields."""
    step_loss, finite, ev = out
    by_model = functools.partial(jnp.swapaxes, axis1=0, axis2=1)
    history = {"step_loss": by_model(step_loss).reshape(step_loss.shape[1], -1), "finite": by_model(finite)}
    for name in eval_names:
        history[f"{name}_loss"] = by_model(ev[name]["loss"])
        history[f"{name}_acc"] = by_model(ev[name]["accuracy"])
    return history


def _make_chunked(model, optimizer, *, epochs, **kw):
    """`fit_many`'s programs, which a persistent compile cache keeps (no host callback inside):
    ``init(keys, hparams, x, t, eval_sets) -> (train_states, run_keys, out)`` with `out` the
    epochs' outputs (E, M, ...) zero-filled, and ``run[guard](train_states, run_keys, hparams,
    out, lo, hi, x, t, eval_sets) -> (train_states, out, trusted)``, epochs lo to hi - 1 (a
    `lax.fori_loop`) filled in. One compilation of each serves every chunk of epochs, so progress
    can show between calls. ``run["end"]`` checks at the end of each epoch (`_parts`) and keeps its
    arguments; where `trusted` is False, ``run["step"]`` (donating them) repeats the chunk from them."""
    def chunk(guard):
        init, every_model = _parts(model, optimizer, guard=guard, **kw)

        def start(keys, hparams, x, t, eval_sets):
            ts, run_keys = init(keys, hparams)
            one = jax.eval_shape(every_model, ts, run_keys, hparams, 1, x, t, eval_sets)[1]
            out = jax.tree_util.tree_map(lambda s: jnp.zeros((epochs, *s.shape), s.dtype), one)
            return ts, run_keys, out

        def run(ts, run_keys, hparams, out, lo, hi, x, t, eval_sets):
            def body(e, carry):
                ts, out, trusted = carry
                ts, o, ok = every_model(ts, run_keys, hparams, e, x, t, eval_sets)
                return ts, jax.tree_util.tree_map(lambda buf, v: buf.at[e - 1].set(v), out, o), trusted & jnp.all(ok)

            return jax.lax.fori_loop(lo, hi, body, (ts, out, jnp.ones((), bool)))

        return start, run

    start, run_end = chunk("end")
    return jax.jit(start), {"end": jax.jit(run_end), "step": jax.jit(chunk("step")[1], donate_argnums=(0, 3))}


def fit_many(model: Model | Builder, optimizer: optax.GradientTransformation | Builder, data,
             keys: Array, *, hparams: Any = None, epochs: int, batch_size: int = 100,
             num_batches: int | None = None, grad: str = "autodiff",
             eval_data: Mapping[str, tuple[Array, Array]] | None = None,
             eval_batch_size: int = 1000, devices: int | Sequence[jax.Device] | Mesh | None = None,
             progress: bool = True, desc: str | None = None):
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
    rounding. Then the run is one call of `make_fit_many`'s program, its progress one line at the end.

    `progress` shows the epochs as they finish (`fnn.progress`: a bar on a terminal, lines in a
    log), labelled `desc`, with the loss and the accuracies averaged over the models: the program
    runs ``ceil(epochs / PROGRESS_CALLS)`` epochs a call (one call with ``progress=False``), the
    same compiled program for every call, with the same numbers either way, and JAX's persistent
    compile cache keeps it (no host callback inside).

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
    name = model.name if isinstance(model, Model) else "fit_many"
    names = tuple(eval_data)
    mesh = parallel.batch_mesh(devices, "fit_many")  # None: one device
    if mesh is not None:
        return _fit_many_on(mesh, model, optimizer, keys, hparams, x, t, eval_data, M=M, S=S, fit_form=fit_form,
                            epochs=epochs, batch_size=batch_size, num_batches=num_batches, grad=grad,
                            eval_batch_size=eval_batch_size, progress=progress, desc=desc or f"{M} x {name}")
    start, run = _make_chunked(model, optimizer, epochs=epochs, batch_size=batch_size, num_batches=num_batches,
                               grad=grad, eval_names=names, eval_batch_size=eval_batch_size)
    data = (jnp.asarray(x), jnp.asarray(t), tuple((jnp.asarray(xe), jnp.asarray(te)) for xe, te in eval_data.values()))
    t0 = time.perf_counter()
    start = start.lower(keys, hparams, *data).compile(compile_cache.cpu_options(0))  # runs once
    ts, run_keys, out = start(keys, hparams, *data)
    # lo, hi: traced; XLA's level 1 compiles faster, the steps as fast (fnn.step, docs/SPEED.md)
    compiled = {}

    def program(guard):  # the per-step guard's program compiled only when a chunk needs it
        if guard not in compiled:
            compiled[guard] = run[guard].lower(ts, run_keys, hparams, out, 1, epochs + 1, *data).compile(
                compile_cache.cpu_options(1))
        return compiled[guard]

    program("end")
    t1 = time.perf_counter()
    every = math.ceil(epochs / PROGRESS_CALLS)
    with progress_bar(epochs, desc=desc or f"{M} x {name}", enabled=progress) as bar:
        step = every if bar.how != "off" else epochs  # without progress: one call
        for lo in range(1, epochs + 1, step):
            hi = min(lo + step, epochs + 1)
            new_ts, new_out, trusted = program("end")(ts, run_keys, hparams, out, lo, hi, *data)
            if not bool(trusted):  # something not finite: the chunk again, each step checked
                new_ts, new_out, _ = program("step")(ts, run_keys, hparams, out, lo, hi, *data)
            ts, out = new_ts, new_out
            if bar.how != "off":  # the epoch's numbers, averaged over the models: one small transfer
                loss, _, ev = jax.tree_util.tree_map(lambda a, i=hi - 2: jnp.mean(a[i]), out)
                bar.update(hi - 1 - bar.n, loss=float(loss),
                           **{f"{k}_acc": float(ev[k]["accuracy"]) for k in names})
        train_states, history = jax.block_until_ready((ts, _history(out, names)))
    return train_states, _with_epochs(history, M=M, S=S, epochs=epochs, fit_form=fit_form, t0=t0, t1=t1)


def _fit_many_on(mesh, model, optimizer, keys, hparams, x, t, eval_data, *, M, S, fit_form, epochs, progress,
                 desc, **kw):
    """`fit_many` over the devices of `mesh`: the models split over them, the data on every one, the
    results on every one; one program (`make_fit_many`), its progress shown once, at the end."""
    if M % parallel.num_shards(mesh):
        raise ValueError(f"fit_many: keys holds {M} models, expected a multiple of "
                         f"{parallel.num_shards(mesh)} (the devices of devices=, which each train M / n)")
    run = make_fit_many(model, optimizer, epochs=epochs, eval_names=tuple(eval_data), **kw)
    args = (keys, hparams, jnp.asarray(x), jnp.asarray(t),
            tuple((jnp.asarray(xe), jnp.asarray(te)) for xe, te in eval_data.values()))
    args = (*parallel.split(args[:2], mesh), *parallel.replicate(args[2:], mesh))
    run = jax.jit(run, out_shardings=parallel.replicated(mesh))
    t0 = time.perf_counter()
    compiled = run.lower(*args).compile(compile_cache.cpu_options(1))
    t1 = time.perf_counter()
    with progress_bar(epochs, desc=desc, enabled=progress) as bar:
        train_states, history = jax.block_until_ready(compiled(*args))
        bar.update(epochs, loss=float(jnp.mean(history["step_loss"][:, -S:])))
    return train_states, _with_epochs(history, M=M, S=S, epochs=epochs, fit_form=fit_form, t0=t0, t1=t1)


def _with_epochs(history: dict, *, M: int, S: int, epochs: int, fit_form: bool, t0: float, t1: float) -> dict:
    """`history` with `fit`'s epoch and step counters, the run and compile times (started at t0,
    compiled at t1, ended now) and, in fit's form, the per-epoch mean training loss."""
    t2 = time.perf_counter()
    epoch = jnp.broadcast_to(jnp.arange(1, epochs + 1), (M, epochs))
    history.update(epoch=epoch, step=epoch * S, seconds=t2 - t1, compile_seconds=t1 - t0)
    if fit_form:
        history["train_loss"] = history["step_loss"].reshape(M, epochs, S).mean(-1)
    return history


class EpochProgress:
    """`make_fit_many`'s ``on_epoch`` that shows the epochs on a `fnn.progress` bar, open while
    the program runs inside ``with``::

        shown = EpochProgress(E, "search")
        run = make_fit_many(..., epochs=E, on_epoch=shown if shown.enabled else None)
        with shown:
            ts, history = run(keys, hparams, x, t, eval_sets)

    `enabled` is False when `progress` is off (``progress=False`` or ``FNN_PROGRESS=off``): then
    leave ``on_epoch`` out, so the program has no host calls. Calls outside ``with`` are ignored."""

    def __init__(self, epochs: int, desc: str, *, enabled: bool = True):
        self.epochs, self.desc, self.bar = epochs, desc, None
        self.enabled = progress_mode(enabled) != "off"

    def __call__(self, epoch, loss, accuracy) -> None:
        if self.bar is not None:
            self.bar.update(int(epoch) - self.bar.n, loss=float(loss),
                            **{f"{k}_acc": float(v) for k, v in accuracy.items()})

    def __enter__(self) -> EpochProgress:
        self.bar = progress_bar(self.epochs, desc=self.desc, enabled=self.enabled)
        return self

    def __exit__(self, *exc) -> None:
        jax.effects_barrier()  # every epoch's callback has run before the bar closes
        self.bar.close()
        self.bar = None


def index(tree: Any, m: int) -> Any:
    """Model m's slice of a stacked pytree (a `fit_many` train state or history); leaves without
    a model axis (the history's ``seconds``, Python floats) stay as they are."""
    return jax.tree_util.tree_map(lambda a: a[m] if jnp.ndim(a) else a, tree)
