"""Training and evaluating language models: truncated BPTT, perplexity, text generation (DLFS2 ch5-7).

* `fit_lm` — DLFS2's ``RnnlmTrainer.fit`` (§5.5.3): mini-batches from `fnn.data.corpus.bptt_batches`,
  the recurrent state carried from batch to batch (the model's `state`), gradient clipping in the
  optimizer (``fnn.optim.sgd(lr, max_grad=...)``), perplexity = exp(mean loss) every
  `eval_interval` steps. The steps are `fnn.step.make_steps` — the step every model trains with,
  scanned over `eval_interval` consecutive batches per jitted call. With `val_corpus` it also does
  ``train_better_rnnlm.py``'s rule (§6.5.4): after each epoch, evaluate; when validation
  perplexity got worse, divide the learning rate by `lr_decay` (4 in the book). That needs an
  optimizer whose state holds its learning rate:
  ``optax.inject_hyperparams(fnn.optim.sgd)(learning_rate=20.0, max_grad=0.25)``.
* `perplexity` — DLFS2's ``eval_perplexity`` (``common/util.py``): batch 10, T = 35, stateful from a
  reset state, exp of the mean of the per-batch mean losses.
* `generate` — DLFS2 §7.1 ``RnnlmGen.generate``: sample word after word from the softmax.

Word ids are checked once per call on the host (`fnn._checks.check_ids`): a corpus, `start_id` and
`skip_ids` must be integers in [0, V), V the model's vocabulary. Inside the compiled programs no
value check can run and JAX clamps an out-of-range embedding lookup (id 7 of 5 words reads row 4)
and target (a perplexity of exactly 1.0 on ids >= V), so `make_perplexity`, which returns the bare
program, checks nothing: call `perplexity` for a checked result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array
from jax.sharding import Mesh

from fnn import functions as F
from fnn import parallel
from fnn._checks import check_corpus, check_ids, check_positive_int
from fnn.data.corpus import bptt_batches, eval_batches
from fnn.models._model import Model
from fnn.optim import set_learning_rate
from fnn.progress import bar as progress_bar
from fnn.step import GRADS, TrainState, make_steps, own_copy

__all__ = ["fit_lm", "generate", "initial_state", "make_perplexity", "perplexity", "vocab_size"]


def initial_state(model: Model, params, batch_size: int, time_size: int = 1):
    """The model's reset state for `batch_size` sequences: zeros of the shape `apply` returns."""
    xs = jax.ShapeDtypeStruct((batch_size, time_size), jnp.int32)
    shapes = jax.eval_shape(lambda p, x: model.apply(p, {}, x)[1], params, xs)
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def vocab_size(model: Model, params) -> int:
    """V, the number of words the model scores (the last axis of its scores)."""
    x = jax.ShapeDtypeStruct((1, 1), jnp.int32)
    return jax.eval_shape(lambda p, xi: model.apply(p, {}, xi)[0], params, x).shape[-1]


def make_perplexity(model: Model):
    """A jitted ``f(params, xs, ts) -> perplexity`` over eval batches (nb, N, T), from a reset state.

    No value check (see the module docstring): ids >= V are clamped; `perplexity` checks them."""
    def f(params, xs, ts):
        state0 = initial_state(model, params, xs.shape[1], xs.shape[2])

        def body(carry, batch):
            state, total = carry
            x, t = batch
            scores, state = model.apply(params, state, x, train=False)
            scores = scores.astype(jnp.promote_types(scores.dtype, jnp.float32))
            logp = F.log_softmax(scores)  # (N, T, V)
            nll = -jnp.mean(jnp.sum(logp * (t[..., None] == jnp.arange(scores.shape[-1])[None, None, :]), -1))
            return (state, total + nll), None

        zero = jnp.zeros((), jnp.promote_types(jax.tree_util.tree_leaves(params)[0].dtype,
                                               jnp.float32))
        (_, total), _ = jax.lax.scan(body, (state0, zero), (xs, ts))
        return jnp.exp(total / xs.shape[0])

    return jax.jit(f)


def perplexity(model: Model, params, corpus, *, batch_size: int = 10, time_size: int = 35) -> float:
    """Perplexity of `corpus` (1-d word ids in [0, V)) exactly as DLFS2's ``eval_perplexity`` computes it."""
    corpus = check_corpus("perplexity", "corpus", corpus, vocab_size(model, params))
    xs, ts = eval_batches(corpus, batch_size, time_size)
    return float(make_perplexity(model)(params, jnp.asarray(xs), jnp.asarray(ts)))


def fit_lm(model: Model, optimizer: optax.GradientTransformation, corpus, *, key: Array,
           epochs: int, batch_size: int = 20, time_size: int = 35, grad: str = "autodiff",
           eval_interval: int = 20, val_corpus=None, lr_decay: float | None = None,
           reset_each_epoch: bool = False, train_state: TrainState | None = None,
           devices: int | Sequence[jax.Device] | Mesh | None = None, progress: bool = True,
           desc: str | None = None, on_epoch: Callable[[dict, TrainState], None] | None = None):
    """Train an LM on `corpus` (1-d word ids) by truncated BPTT (DLFS2 §5.5.3, ``RnnlmTrainer``).

    Each epoch has ``(len(corpus) - 1) // (batch_size * time_size)`` steps; the read position keeps
    advancing across epochs as the book's trainer does within one ``fit`` call, and the recurrent
    state is carried throughout (``reset_each_epoch=True`` zeros it after each epoch, as
    ``train_better_rnnlm.py`` does after its validation pass). With `val_corpus`, the validation
    perplexity is computed after each epoch; with `lr_decay` too, the learning rate is divided by
    it whenever that perplexity did not improve (DLFS2 §6.5.4).

    Returns ``(train_state, history)``: ``ppl`` (train perplexity every `eval_interval` steps),
    ``ppl_step``, ``val_ppl`` and ``lr`` per epoch, ``seconds`` (training time, compile included).

    `devices` splits each mini-batch of `batch_size` sequences (a multiple of their number) over
    devices, as `fnn.train.fit` does (`fnn.parallel`): the train state and the batches are copied
    to every device, each device carries its sequences' recurrent state, and the result equals the
    one-device run up to float rounding; several processes work as for `fit`.

    `on_epoch(line, train_state)` is called after each epoch, its validation and the learning-rate
    rule, with ``line = {"epoch": e (from 1), "ppl": ..., "val_ppl": ... (with `val_corpus`)}``; it
    is where to keep the best parameters, as ``train_better_rnnlm.py`` saves them whenever the
    validation perplexity improves. The next step donates `train_state`'s buffers: copy what you
    keep (``jax.device_get``).

    `corpus` and `val_corpus` are checked once (word ids in [0, V), V the model's vocabulary). A
    given `train_state` is copied before the first (donating) step, so the caller's stays usable.
    """
    if grad not in GRADS:
        raise ValueError(f"fit_lm: grad is {grad!r}, expected one of {GRADS}")
    epochs = check_positive_int("fit_lm", "epochs", epochs)
    eval_interval = check_positive_int("fit_lm", "eval_interval", eval_interval)
    init_key, key = jax.random.split(key)
    if train_state is None:
        params, _ = model.init(init_key)
        train_state = TrainState(params, initial_state(model, params, batch_size, time_size),
                                 optimizer.init(params))
    else:
        train_state = own_copy("fit_lm", train_state)  # the steps donate this copy
    V = vocab_size(model, train_state.params)
    corpus = check_corpus("fit_lm", "corpus", corpus, V)
    if val_corpus is not None:
        val_corpus = check_corpus("fit_lm", "val_corpus", val_corpus, V)
    _, _, _ = bptt_batches(corpus[: batch_size * time_size + 1], batch_size, time_size)  # checks
    mesh = parallel.batch_mesh(devices, "fit_lm")  # None: one device, no sharding
    parallel.check_batch_size("fit_lm", "batch_size", batch_size, mesh)
    per_epoch = (len(corpus) - 1) // (batch_size * time_size)
    if lr_decay is not None:
        set_learning_rate(train_state.opt_state, 1.0)  # fail now if the lr cannot be changed
    # With devices, each call's arguments (the train state, a changed learning rate, the batches)
    # are first copied to every device; what a step left there already stays as is.
    run = parallel.on_mesh(make_steps(model, optimizer, grad=grad, mesh=mesh), mesh)
    ppl_eval = parallel.on_mesh(make_perplexity(model), mesh) if val_corpus is not None else None
    history = {"ppl": [], "ppl_step": [], "val_ppl": [], "lr": [], "epoch_loss": []}
    best, time_idx, seconds, done = math.inf, 0, 0.0, 0
    with progress_bar(epochs * per_epoch, desc=desc or model.name, unit="step", enabled=progress) as bar:
        for epoch in range(epochs):
            xs, ys, time_idx = bptt_batches(corpus, batch_size, time_size, time_idx=time_idx)
            epoch_losses = []
            for start in range(0, per_epoch, eval_interval):
                stop = min(start + eval_interval, per_epoch)
                key, k = jax.random.split(key)
                t0 = time.perf_counter()
                train_state, metrics = run(train_state, jnp.asarray(xs[start:stop]),
                                           jnp.asarray(ys[start:stop]), k)
                losses, finite = np.asarray(metrics["loss"]), np.asarray(metrics["finite"])
                seconds += time.perf_counter() - t0
                if not np.all(finite):  # the step was refused (fnn.step): the state is the one before it
                    i = int(np.argmin(finite))
                    what = (f"the loss became {losses[i]}" if not np.isfinite(losses[i])
                            else f"a gradient became non-finite (loss {losses[i]:.6g})")
                    raise FloatingPointError(f"fit_lm: {what} at step {done + i + 1} (epoch {epoch + 1}); "
                                             f"lower the learning rate")
                done += stop - start
                epoch_losses.append(losses)
                history["ppl"].append(float(np.exp(losses.mean())))
                history["ppl_step"].append(done)
                if stop < per_epoch:  # within the epoch: a bar moves, a log waits for the epoch's line
                    bar.update(stop - start, line=False, epoch=epoch + 1, ppl=history["ppl"][-1])
            epoch_line = {"epoch": epoch + 1, "ppl": history["ppl"][-1]}
            history["epoch_loss"].append(float(np.concatenate(epoch_losses).mean()))
            hp = getattr(train_state.opt_state, "hyperparams", {})
            history["lr"].append(float(hp["learning_rate"]) if "learning_rate" in hp else None)
            if ppl_eval is not None:
                vx, vt = eval_batches(val_corpus)
                val = float(ppl_eval(train_state.params, jnp.asarray(vx), jnp.asarray(vt)))
                history["val_ppl"].append(val)
                epoch_line["val_ppl"] = val
                if lr_decay is not None and val >= best:
                    opt_state = set_learning_rate(train_state.opt_state,
                                                  history["lr"][-1] / lr_decay)
                    train_state = train_state._replace(opt_state=opt_state)
                best = min(best, val)
            bar.update(per_epoch - (bar.n - epoch * per_epoch), **epoch_line)  # the epoch's last steps
            if on_epoch is not None:
                on_epoch(dict(epoch_line), train_state)
            if reset_each_epoch:
                train_state = train_state._replace(state=jax.tree_util.tree_map(
                    jnp.zeros_like, train_state.state))
    history["seconds"] = seconds
    return train_state, history


def generate(model: Model, params, start_id, key: Array, *, sample_size: int = 100,
             skip_ids=(), state=None) -> list[int]:
    """`sample_size` word ids starting with `start_id`, each sampled from the LM's softmax
    (DLFS2 §7.1.1, ``RnnlmGen.generate``), as one `lax.scan`.

    `start_id` may be a prompt, a sequence of word ids (DLFS2 §7.1.3, ``generate_better_text.py``'s
    ``"the meaning of life is"``): the model reads all but its last word in one call (the book's
    ``model.predict`` on each), sampling starts from the last, and the prompt comes first in the
    result, ``len(prompt) - 1 + sample_size`` ids in all.

    `skip_ids` (e.g. ``<unk>``, ``N``) are never produced: their probability is set to zero and the
    rest renormalised, which is the distribution of the book's redraw-until-allowed loop (the book
    also advances the LSTM state on each redraw; here the state advances once per word).
    `start_id` and `skip_ids` must be integer word ids in [0, V), and leave at least one word.
    """
    sample_size = check_positive_int("generate", "sample_size", sample_size)
    state = initial_state(model, params, 1) if state is None else state
    scores_shape = jax.eval_shape(lambda p: model.apply(p, state, jnp.zeros((1, 1), jnp.int32))[0],
                                  params)
    V = scores_shape.shape[-1]
    check_ids("generate", "start_id", start_id, V, what="word ids", unit="words in the model's vocabulary")
    prompt = [int(i) for i in np.ravel(start_id)]
    if not prompt:
        raise ValueError("generate: start_id is an empty prompt, expected a word id or a sequence of word ids")
    if len(prompt) > 1:  # read the prompt's first words; the state carries them
        _, state = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False))(
            params, state, jnp.asarray(prompt[:-1], jnp.int32).reshape(1, -1))
    check_ids("generate", "skip_ids", list(skip_ids), V, what="word ids", unit="words in the model's vocabulary")
    if len(set(np.asarray(list(skip_ids), np.int64).tolist())) >= V:
        raise ValueError(f"generate: skip_ids bans all {V} words of the vocabulary, expected at least one "
                         f"word left to sample")
    banned = jnp.zeros((V,), bool).at[jnp.asarray(list(skip_ids), jnp.int32)].set(True)

    @jax.jit
    def run(params, state, key):
        def body(carry, k):
            x, state = carry
            scores, state = model.apply(params, state, x.reshape(1, 1), train=False)
            logits = jnp.where(banned, -jnp.inf, scores.reshape(V).astype(jnp.float32))
            nxt = jax.random.categorical(k, logits).astype(jnp.int32)
            return (nxt, state), nxt

        _, ids = jax.lax.scan(body, (jnp.asarray(prompt[-1], jnp.int32), state),
                              jax.random.split(key, sample_size - 1))
        return ids

    return prompt + [int(i) for i in np.asarray(run(params, state, key))]
