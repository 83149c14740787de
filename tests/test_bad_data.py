"""Bad training and evaluation data gets a clear error before anything trains: NaN named with its
array and first index, labels checked in their own dtype, soft targets that are not distributions,
word ids outside the vocabulary, at every entry point that takes data (`fit`, `fit_many`, the
evaluation of `make_evaluate`, `fit_lm`, `perplexity`, `generate`, the time layers given concrete
arrays). Under `jit` no value check can run; the last test shows what JAX does there (clamps).

Each case is ``(call, exception, fragments)``, as in test_bad_input.py: the call must raise the
exception and the message must hold every fragment (the function, the argument, the expected value).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fnn import functions as F
from fnn import lm, train
from fnn._checks import InputWarning
from fnn.layers import time as T
from fnn.models import mlp, rnnlm
from fnn.multi import fit_many
from fnn.step import init_train_state, make_evaluate, make_steps

from .test_train import _blobs

f64 = jnp.float64
MODEL = mlp.model(5, [8], 3, dtype=f64)
OPT = optax.sgd(0.1)
LM = rnnlm.simple_rnnlm(5, 4, 4)
EYE = np.eye(3)


def _poison(a, index, value):
    a = np.array(a, copy=True)
    a[index] = value
    return a


def _fit(change, model=MODEL, **kw):
    """fit on `change(_blobs())`: ((x, t), (xt, tt)) -> the data to train on."""
    kw = {"key": jax.random.key(0), "epochs": 1, "batch_size": 10, "progress": False, **kw}
    return lambda: train.fit(model, OPT, change(_blobs()), **kw)


def _no_x64(call):
    """`call` with JAX's default 32-bit types, as a user's session has them (tests run in float64)."""
    def run():
        with jax.enable_x64(False):
            return call()
    return run


def _evaluate(x_change=None, t_change=None):
    ts = init_train_state(MODEL, OPT, jax.random.key(0))
    (x, t), _ = _blobs()
    x, t = (x_change or (lambda a: a))(x), (t_change or (lambda a: a))(t)
    return lambda: make_evaluate(MODEL)(ts.params, ts.state, x, t)


def _fit_many(change, **kw):
    return lambda: fit_many(MODEL, OPT, change(_blobs()), jax.random.split(jax.random.key(0), 2), epochs=1,
                            batch_size=10, **kw)


def _lm_params():
    return LM.init(jax.random.key(0))[0]


def _fit_lm(corpus, **kw):
    kw = {"key": jax.random.key(0), "epochs": 1, "batch_size": 2, "time_size": 5, "progress": False, **kw}
    return lambda: lm.fit_lm(LM, OPT, corpus, **kw)


def _generate(start_id=1, **kw):
    return lambda: lm.generate(LM, _lm_params(), start_id, jax.random.key(0), sample_size=4, **kw)


def _consumed_state():
    params, _ = LM.init(jax.random.key(0))
    ts = init_train_state(LM, OPT, jax.random.key(0))._replace(state=lm.initial_state(LM, params, 2, 5))
    xs = jnp.zeros((1, 2, 5), jnp.int32)
    make_steps(LM, OPT)(ts, xs, xs, jax.random.key(1))  # donates ts
    return ts


CORPUS = np.arange(400) % 5

CASES = {
    # --- fit: non-finite values, named with the set, the array and the first index -----------------
    "fit: NaN in a test image": (_fit(lambda d: (d[0], (_poison(d[1][0], (5, 3), np.nan), d[1][1]))), ValueError,
                                 ["fit: test x[5, 3] is nan", "expected finite numbers"]),
    "fit: NaN in a training image": (_fit(lambda d: ((_poison(d[0][0], (5, 2), np.nan), d[0][1]), d[1])),
                                     ValueError, ["fit: train x[5, 2] is nan", "1 of 450 values"]),
    "fit: inf in a training image": (_fit(lambda d: ((_poison(d[0][0], (7, 0), np.inf), d[0][1]), d[1])),
                                     ValueError, ["fit: train x[7, 0] is inf", "expected finite numbers"]),
    "fit: -inf in a test image": (_fit(lambda d: (d[0], (_poison(d[1][0], (0, 4), -np.inf), d[1][1]))),
                                  ValueError, ["fit: test x[0, 4] is -inf"]),
    "fit: test images of another width": (_fit(lambda d: (d[0], (d[1][0][:, :4], d[1][1]))), ValueError,
                                          ["fit (test data):", "x has 4 features", "expected 5"]),
    # --- fit: labels in their own dtype, before any cast ---------------------------------------------
    "fit: int64 labels of 2**32 + 1 (no x64)": (
        _no_x64(_fit(lambda d: ((d[0][0].astype(np.float32), d[0][1].astype(np.int64) + 2**32),
                                (d[1][0].astype(np.float32), d[1][1])), model=mlp.model(5, [8], 3))),
        ValueError, ["fit (train data): t holds the label 42949672", "expected labels in [0, 2]"]),
    "fit: int64 test labels of 2**32 (no x64)": (
        _no_x64(_fit(lambda d: ((d[0][0].astype(np.float32), d[0][1]),
                                (d[1][0].astype(np.float32), d[1][1].astype(np.int64) - 2**32)),
                     model=mlp.model(5, [8], 3))),
        ValueError, ["fit (test data): t holds the label -42949672", "expected labels in [0, 2]"]),
    "fit: a negative test label": (_fit(lambda d: (d[0], (d[1][0], _poison(d[1][1], 4, -1)))), ValueError,
                                   ["fit (test data): t holds the label -1", "[0, 2]", "first at t[4]"]),
    "fit: uint8 labels above the classes": (_fit(lambda d: ((d[0][0], d[0][1].astype(np.uint8) + 250), d[1])),
                                            ValueError, ["t holds the label 25", "expected labels in [0, 2]"]),
    # --- fit: one-hot / soft targets are distributions -------------------------------------------------
    "fit: negative soft targets": (_fit(lambda d: ((d[0][0], EYE[d[0][1]] * 2 - 1), (d[1][0], EYE[d[1][1]]))),
                                   ValueError, ["fit (train data): t[0, ", "is -1", "probabilities in [0, 1]"]),
    "fit: soft targets above 1": (_fit(lambda d: (d[0], (d[1][0], EYE[d[1][1]] * 1.5))), ValueError,
                                  ["fit (test data): t[0, ", "is 1.5", "[0, 1]"]),
    "fit: soft targets that do not sum to 1": (
        _fit(lambda d: ((d[0][0], EYE[d[0][1]] * 0.5), (d[1][0], EYE[d[1][1]]))), ValueError,
        ["fit (train data): t[0] sums to 0.5", "expected each row of targets to sum to 1"]),
    "fit: one-hot targets with NaN": (_fit(lambda d: (d[0], (d[1][0], _poison(EYE[d[1][1]], (2, 1), np.nan)))),
                                      ValueError, ["fit (test data): t[2, 1] is nan", "finite"]),
    "fit: one-hot targets of an integer dtype": (
        _fit(lambda d: ((d[0][0], np.eye(3, dtype=np.int64)[d[0][1]]), d[1])), TypeError,
        ["t (one-hot) has dtype int64", "floating"]),
    # --- evaluation: make_evaluate's function checks eager data ---------------------------------------
    "evaluate: label 9 of 3 classes": (_evaluate(t_change=lambda t: _poison(t, 4, 9)), ValueError,
                                       ["evaluate: t holds the label 9", "expected labels in [0, 2]", "t[4]"]),
    "evaluate: NaN in x": (_evaluate(x_change=lambda x: _poison(x, (3, 1), np.nan)), ValueError,
                           ["evaluate: x[3, 1] is nan", "expected finite numbers"]),
    "evaluate: float labels": (_evaluate(t_change=lambda t: t.astype(np.float64)), TypeError,
                               ["evaluate: t has dtype float64", "integer"]),
    "evaluate: soft targets summing to 2": (_evaluate(t_change=lambda t: EYE[t] * 2), ValueError,
                                            ["evaluate: t[0, ", "is 2", "[0, 1]"]),
    # --- fit_many: the same checks once, before the one program is compiled ---------------------------
    "fit_many: a label out of range": (_fit_many(lambda d: ((d[0][0], _poison(d[0][1], 3, 7)), d[1])), ValueError,
                                       ["fit_many (train data): t holds the label 7", "[0, 2]", "t[3]"]),
    "fit_many: NaN in the test set": (_fit_many(lambda d: (d[0], (_poison(d[1][0], (1, 1), np.nan), d[1][1]))),
                                      ValueError, ["fit_many: test x[1, 1] is nan"]),
    "fit_many: an eval set's label out of range": (
        _fit_many(lambda d: d[0], eval_data={"val": (np.zeros((4, 5)), np.array([0, 1, 2, 3]))}), ValueError,
        ["fit_many (val data): t holds the label 3", "[0, 2]"]),
    # --- language models: word ids in [0, V), integers ------------------------------------------------
    "perplexity: ids >= V": (lambda: lm.perplexity(LM, _lm_params(), np.full(200, 7), batch_size=2, time_size=5),
                             ValueError, ["perplexity: corpus holds the id 7", "word ids in [0, 4]", "5 words"]),
    "perplexity: float ids": (lambda: lm.perplexity(LM, _lm_params(), CORPUS * 1.0, batch_size=2, time_size=5),
                              TypeError, ["perplexity: corpus has dtype float64", "integer word ids in [0, 4]"]),
    "perplexity: a 2-d corpus": (lambda: lm.perplexity(LM, _lm_params(), CORPUS.reshape(4, 100)), ValueError,
                                 ["perplexity: corpus has shape (4, 100)", "1-d array of word ids"]),
    "fit_lm: ids >= V": (_fit_lm(np.arange(400) % 9), ValueError,
                         ["fit_lm: corpus holds the id 5", "[0, 4]", "first at corpus[5]"]),
    "fit_lm: a negative id": (_fit_lm(_poison(CORPUS, 17, -1)), ValueError,
                              ["fit_lm: corpus holds the id -1", "corpus[17]"]),
    "fit_lm: val_corpus ids >= V": (_fit_lm(CORPUS, val_corpus=np.full(400, 6)), ValueError,
                                    ["fit_lm: val_corpus holds the id 6", "[0, 4]"]),
    "fit_lm: a corpus that is not an array": (_fit_lm("the cat sat"), TypeError,
                                              ["fit_lm: corpus is a str", "1-d array of word ids"]),
    "fit_lm: a consumed train_state": (lambda: lm.fit_lm(LM, OPT, CORPUS, key=jax.random.key(0), epochs=1,
                                                         batch_size=2, time_size=5, progress=False,
                                                         train_state=_consumed_state()),
                                       ValueError, ["fit_lm: train_state holds arrays that were deleted",
                                                    "expected the train state that call returned"]),
    "generate: start_id 50 of 5 words": (_generate(50), ValueError,
                                         ["generate: start_id is 50", "word ids in [0, 4]", "5 words"]),
    "generate: start_id -1": (_generate(-1), ValueError, ["generate: start_id is -1", "[0, 4]"]),
    "generate: start_id 2.0": (_generate(2.0), TypeError, ["generate: start_id has dtype float64", "integer"]),
    "generate: start_id True": (_generate(True), TypeError, ["generate: start_id has dtype bool", "integer"]),
    "generate: skip_ids outside the vocabulary": (_generate(skip_ids=[1, 99]), ValueError,
                                                  ["generate: skip_ids holds the id 99", "skip_ids[1]"]),
    "generate: every word skipped": (_generate(skip_ids=range(5)), ValueError,
                                     ["generate: skip_ids bans all 5 words", "at least one word"]),
    # --- the time layers, given concrete arrays --------------------------------------------------------
    "time_embedding: id -1": (lambda: T.time_embedding.forward({"W": jnp.ones((5, 3))}, jnp.array([[1, -1]])),
                              ValueError, ["time_embedding.forward: xs holds the id -1", "[0, 4]", "xs[0, 1]"]),
    "time_embedding: float ids": (lambda: T.time_embedding.forward({"W": jnp.ones((5, 3))}, jnp.ones((1, 2))),
                                  TypeError, ["time_embedding.forward: xs has dtype float64", "integer word ids"]),
    "time_softmax_with_loss: one-hot of 2 and -1": (
        lambda: T.time_softmax_with_loss.forward({}, jnp.zeros((1, 2, 3)), jnp.array([[[2.0, -1, 0], [0, 1, 0]]])),
        ValueError, ["time_softmax_with_loss.forward: ts[0, 0, 0] is 2", "[0, 1]"]),
    "time_affine_softmax_with_loss: label 9 of 7": (
        lambda: T.time_affine_softmax_with_loss.forward({"W": jnp.zeros((4, 7)), "b": jnp.zeros(7)},
                                                        jnp.zeros((2, 3, 4)), jnp.full((2, 3), 9)),
        ValueError, ["time_affine_softmax_with_loss.forward: ts holds the label 9", "[0, 6]"]),
    "cross_entropy: negative soft targets": (
        lambda: F.cross_entropy(jnp.zeros((2, 3)), jnp.array([[1.5, -0.5, 0.0], [0, 1, 0]])), ValueError,
        ["cross_entropy: t[0, 0] is 1.5", "probabilities in [0, 1]"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_data_gets_a_clear_error(name):
    call, error, fragments = CASES[name]
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"{name}: the message lacks {missing}:\n{message}"


def test_raw_pixels_warn_and_still_train():
    rng = np.random.default_rng(0)
    x, t = rng.integers(0, 256, (60, 5)).astype(np.float64), rng.integers(0, 3, 60)
    with pytest.warns(InputWarning, match=r"fit: train x holds whole numbers up to 255: raw pixels 0\.\.255\?"
                                          r".*expect values in \[0, 1\].*normalize=True"):
        _, history = train.fit(MODEL, OPT, ((x, t), (x[:20] / 255, t[:20])), key=jax.random.key(0), epochs=1,
                               batch_size=10, progress=False)
    assert len(history["step_loss"]) == 6


def test_normalised_and_standardised_data_do_not_warn(recwarn):
    (x, t), test = _blobs()  # standardised features up to ~6, not whole numbers
    train.fit(MODEL, OPT, ((x, t), test), key=jax.random.key(0), epochs=1, batch_size=10, progress=False)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 5)) / 255.0  # [0, 1]
    make_evaluate(MODEL)(*init_train_state(MODEL, OPT, jax.random.key(0))[:2], pixels, rng.integers(0, 3, 30))
    assert not [w for w in recwarn if issubclass(w.category, InputWarning)]


def test_under_jit_no_value_check_runs_and_jax_clamps():
    """What the docstrings promise about traced inputs: the dtype is still checked, values are not,
    and an out-of-range gather reads the last row. The eager call of the same function refuses."""
    W = {"W": jnp.arange(15.0).reshape(5, 3)}
    clamped = jax.jit(lambda xs: T.time_embedding.forward(W, xs)[0])(jnp.array([[7, -1]]))
    assert clamped[0, 0].tolist() == W["W"][4].tolist()  # id 7 of 5 reads row 4
    with pytest.raises(ValueError, match="xs holds the id 7"):
        T.time_embedding.forward(W, jnp.array([[7, -1]]))
    with pytest.raises(TypeError, match="xs has dtype float"):
        jax.jit(lambda xs: T.time_embedding.forward(W, xs)[0])(jnp.ones((1, 2)))


def test_the_value_range_sees_nan_and_inf_on_every_path():
    """check_finite's one pass is a min and a max (`value_range`). numpy's propagate NaN; XLA's do not
    on CPU (jnp.min of [1, nan] is 1 there), so arrays on an accelerator are reduced by a compiled
    isfinite-min-max, and CPU arrays by numpy."""
    from fnn._checks import _device_range, value_range

    x = jnp.ones((100, 10)).at[3, 4].set(jnp.nan)
    finite, lo, hi = _device_range(x)
    assert not bool(finite)
    assert np.isnan(value_range(x)).all() and np.isnan(value_range(np.asarray(x))).all()
    assert not np.isfinite(value_range(np.array([1.0, np.inf]))).all()
    assert not np.isfinite(value_range(jnp.array([1.0, -jnp.inf]))).all()
    assert value_range(jnp.arange(4.0)) == (0.0, 3.0) and value_range(jnp.arange(3)) is None
