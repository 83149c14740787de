"""RNN language models: SimpleRnnlm (DLFS2 §5.5), Rnnlm (§6.4) and BetterRnnlm (§6.5).

    word ids xs (N, T) -> TimeEmbedding -> [TimeDropout] -> (TimeRNN/LSTM/GRU -> [TimeDropout]) x L
                       -> TimeAffine -> scores (N, T, V)   (-> TimeSoftmaxWithLoss with labels ts)

Shapes: N batch, T time steps, V vocabulary, D word-vector size, H hidden size.
Parameters use one dict per layer with the book's names::

    {"embed": {"W": (V, D)}, "lstm": {"Wx": (D, 4H), "Wh": (H, 4H), "b": (4H,)},
     "affine": {"W": (H, V), "b": (V,)}}

(``"rnn"``/``"gru"`` instead of ``"lstm"``; ``"lstm1"``, ``"lstm2"`` for two layers; with weight
tying, §6.5.3, ``"affine"`` holds only ``"b"`` and the output weight is ``embed W`` transposed).

The recurrent carry is the model `state`, ``{"lstm": (h, c)}`` (or ``{"rnn": h}``...), passed in and
handed back as `fnn.models.Model` prescribes. ``stateful=True`` (the book's LMs) starts from the
given state (``{}`` = the book's ``reset_state``: zeros) and returns the last one, so consecutive
truncated-BPTT batches continue the sequence; ``stateful=False`` always starts from zeros.

`network` lists the layers below the output head and `fnn.models.runner` runs them: `apply`,
`loss` and `manual_grad` share its forward pass, and the hand-written backward is the runner's
backward below the head (DLFS2 §5.5.1, ``SimpleRnnlm.backward``). The head stays here, outside the
runner: with weight tying its W is the embedding's W transposed (one parameter read by two layers
in two shapes), and manual_grad's head is TimeAffine + TimeSoftmaxWithLoss fused and run over
chunks of ``Config.head_rows`` rows (`fnn.layers.time.time_affine_softmax_with_loss`): the same
numbers, 1.7-1.9x faster LM steps on one CPU core at the book's sizes; ``head_rows=None`` runs the
two layers as the book does.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from fnn._checks import check_ndim
from fnn.layers import recurrent as R
from fnn.layers import time as TL
from fnn.layers.core import NO_PARAMS
from fnn.models import runner
from fnn.models._model import Model, Params, check_positive_int
from fnn.models.runner import Node

__all__ = [
    "DEFAULT", "apply", "better_rnnlm", "Config", "from_book_params", "init", "layer_names", "loss", "manual_grad",
    "model", "network", "rnnlm", "simple_rnnlm",
]


class Config(NamedTuple):
    """What distinguishes the book's three LMs."""

    family: str = "lstm"      # "rnn", "lstm" or "gru"
    num_layers: int = 1
    drop_rate: float = 0.0    # the book's dropout_ratio (TimeDropout: inverted dropout)
    tied: bool = False        # weight tying: affine W = embed W^T (DLFS2 §6.5.3)
    stateful: bool = True
    head_rows: int | None = TL.HEAD_ROWS  # manual_grad's output head: rows per chunk of the fused
    #   TimeAffine + TimeSoftmaxWithLoss; None: the two layers one after the other (faster on GPU)


DEFAULT = Config()


def layer_names(cfg: Config) -> list[str]:
    """The params keys of the recurrent layers: ``["lstm"]`` or ``["lstm1", "lstm2"]``..."""
    if cfg.num_layers == 1:
        return [cfg.family]
    return [f"{cfg.family}{i}" for i in range(1, cfg.num_layers + 1)]


def init(key: Array, vocab_size: int, wordvec_size: int, hidden_size: int, cfg: Config = DEFAULT,
         *, dtype=jnp.float32) -> Params:
    """The book's initialisation (DLFS2 §5.5.1, ``SimpleRnnlm.__init__``): embed W ~ N(0, 0.01^2);
    Wx ~ N(0, 1/D), Wh ~ N(0, 1/H) (Xavier), affine W ~ N(0, 1/H); biases zero."""
    for name, v in (("vocab_size", vocab_size), ("wordvec_size", wordvec_size),
                    ("hidden_size", hidden_size)):
        check_positive_int("rnnlm.init", name, v)
    if cfg.tied and wordvec_size != hidden_size:
        raise ValueError(f"rnnlm.init: weight tying needs wordvec_size == hidden_size, got "
                         f"{wordvec_size} and {hidden_size}")
    names = layer_names(cfg)
    keys = jax.random.split(key, len(names) + 2)
    params = {"embed": {"W": jax.random.normal(keys[0], (vocab_size, wordvec_size), dtype) / 100}}
    for i, (name, k) in enumerate(zip(names, keys[1:-1], strict=True)):
        params[name] = R.init(k, cfg.family, wordvec_size if i == 0 else hidden_size,
                              hidden_size, dtype=dtype)
    params["affine"] = {"b": jnp.zeros((vocab_size,), dtype)}
    if not cfg.tied:
        params["affine"]["W"] = (jax.random.normal(keys[-1], (hidden_size, vocab_size), dtype)
                                 / jnp.sqrt(hidden_size).astype(dtype))
    return params


def _affine_params(params: Params, cfg: Config) -> Params:
    W = params["embed"]["W"].T if cfg.tied else params["affine"]["W"]
    return {"W": W, "b": params["affine"]["b"]}


def network(cfg: Config) -> tuple[Node, ...]:
    """The layers below the output head, in order (DLFS2 §6.5.2, ``BetterRnnlm.__init__``):
    TimeEmbedding [TimeDropout] (Time{RNN,LSTM,GRU} [TimeDropout]) x num_layers. A recurrent
    layer's carry is the model state under its params key when `cfg.stateful`."""
    drop = ([Node("TimeDropout", TL.time_dropout, options={"drop_rate": cfg.drop_rate}, rng=True,
                  train=True)] if cfg.drop_rate > 0 else [])
    nodes = [Node("TimeEmbedding", TL.time_embedding, "embed"), *drop]
    for name in layer_names(cfg):
        nodes += [Node(f"Time{cfg.family.upper()} {name}", R.time_layer(cfg.family), name,
                       state=name if cfg.stateful else None, carry=True), *drop]
    return tuple(nodes)


def _forward(params: Params, state, xs: Array, cfg: Config, *, train: bool, key, head: bool = True):
    """Scores (N, T, V) (``head=False``: the last hidden states (N, T, H) before TimeAffine), the
    new state, the runner's caches below the head and TimeAffine's cache (None without head)."""
    check_ndim("rnnlm", "xs", xs, 2, "(N, T) word ids")
    if xs.shape[1] == 0:
        raise ValueError(f"rnnlm: xs has shape {tuple(xs.shape)}, expected a sequence length T >= 1")
    x, caches, new_state = runner.forward(network(cfg), params, xs, state=state, train=train, key=key,
                                          name="rnnlm")
    head_cache = None
    if head:
        x, head_cache = TL.time_affine.forward(_affine_params(params, cfg), x)
    return x, (new_state if cfg.stateful else state), caches, head_cache


def apply(params: Params, state, xs: Array, cfg: Config = DEFAULT, *, train: bool = False,
          key: Array | None = None):
    """``(scores (N, T, V), state)`` for word ids xs (N, T) (DLFS2 §6.4, ``Rnnlm.predict``)."""
    scores, state, _, _ = _forward(params, state, xs, cfg, train=train, key=key)
    return scores, state


def loss(params: Params, state, xs: Array, ts: Array, cfg: Config = DEFAULT, *,
         key: Array | None = None, ignore_label: int | None = TL.IGNORE_LABEL):
    """``(mean cross-entropy per word, state)``, training mode; ts (N, T) (DLFS2 §5.5.1 forward)."""
    scores, state, _, _ = _forward(params, state, xs, cfg, train=True, key=key)
    value, _ = TL.time_softmax_with_loss.forward(NO_PARAMS, scores, ts, ignore_label=ignore_label)
    return value, state


def manual_grad(params: Params, state, xs: Array, ts: Array, cfg: Config = DEFAULT, *,
                key: Array | None = None, ignore_label: int | None = TL.IGNORE_LABEL):
    """``(loss, grads, state)`` by the layers' hand-written backward passes in reverse order
    (DLFS2 §5.5.1, ``SimpleRnnlm.backward``); truncated BPTT: no gradient reaches the carried state.
    The output head is `fnn.layers.time.time_affine_softmax_with_loss` in chunks of
    ``cfg.head_rows`` rows (the same numbers as TimeAffine then TimeSoftmaxWithLoss, which
    ``head_rows=None`` runs). With tying, the embedding's gradient is its scatter-add plus the
    affine dW transposed (the book's ``remove_duplicate``)."""
    aff = _affine_params(params, cfg)
    if cfg.head_rows is None:
        scores, state, caches, aff_cache = _forward(params, state, xs, cfg, train=True, key=key)
        value, loss_cache = TL.time_softmax_with_loss.forward(NO_PARAMS, scores, ts,
                                                              ignore_label=ignore_label)
        _, dout = TL.time_softmax_with_loss.backward(NO_PARAMS, loss_cache, 1.0)
        g_aff, dout = TL.time_affine.backward(aff, aff_cache, dout)
    else:
        hs, state, caches, _ = _forward(params, state, xs, cfg, train=True, key=key, head=False)
        value, head_cache = TL.time_affine_softmax_with_loss.forward(
            aff, hs, ts, ignore_label=ignore_label, rows=cfg.head_rows)
        g_aff, dout = TL.time_affine_softmax_with_loss.backward(aff, head_cache, 1.0)
    grads, _, _ = runner.backward(network(cfg), params, caches, dout)
    grads["affine"] = {"b": g_aff["b"]} if cfg.tied else g_aff
    if cfg.tied:
        grads["embed"] = {"W": grads["embed"]["W"] + g_aff["W"].T}
    return value, {k: grads[k] for k in params}, state


def model(vocab_size: int = 10000, wordvec_size: int = 100, hidden_size: int = 100,
          cfg: Config = DEFAULT, *, dtype=jnp.float32, name: str | None = None) -> Model:
    """An LM as a `Model`; see `simple_rnnlm`, `rnnlm`, `better_rnnlm` for the book's three."""
    if cfg.family not in R.FAMILIES:
        raise ValueError(f"rnnlm.model: family is {cfg.family!r}, expected one of "
                         f"{sorted(R.FAMILIES)}")
    if not 0.0 <= cfg.drop_rate < 1.0:
        raise ValueError(f"rnnlm.model: drop_rate is {cfg.drop_rate!r}, expected a value in [0, 1)")
    check_positive_int("rnnlm.model", "num_layers", cfg.num_layers)
    if cfg.head_rows is not None and (not isinstance(cfg.head_rows, int) or cfg.head_rows < 1):
        raise ValueError(f"rnnlm.model: head_rows is {cfg.head_rows!r}, expected a positive integer "
                         f"or None")

    def init_(key):
        return init(key, vocab_size, wordvec_size, hidden_size, cfg, dtype=dtype), {}

    def apply_(params, state, x, *, train=False, key=None):
        return apply(params, state, x, cfg, train=train, key=key)

    def loss_(params, state, x, t, *, key=None):
        return loss(params, state, x, t, cfg, key=key)

    def manual_grad_(params, state, x, t, *, key=None):
        return manual_grad(params, state, x, t, cfg, key=key)

    return Model(init_, apply_, loss_, manual_grad_,
                 name=name or f"rnnlm[{cfg.family}x{cfg.num_layers},V={vocab_size},H={hidden_size}]")


def simple_rnnlm(vocab_size: int, wordvec_size: int = 100, hidden_size: int = 100, **kw) -> Model:
    """The book's ``SimpleRnnlm`` (DLFS2 §5.5.1): Embedding - TimeRNN (stateful) - Affine."""
    return model(vocab_size, wordvec_size, hidden_size, Config("rnn"), name="SimpleRnnlm", **kw)


def rnnlm(vocab_size: int = 10000, wordvec_size: int = 100, hidden_size: int = 100, *,
          family: str = "lstm", **kw) -> Model:
    """The book's ``Rnnlm`` (DLFS2 §6.4): Embedding - TimeLSTM (stateful) - Affine; ``family="gru"``
    puts the appendix's GRU in place of the LSTM."""
    return model(vocab_size, wordvec_size, hidden_size, Config(family), name=f"Rnnlm[{family}]", **kw)


def better_rnnlm(vocab_size: int = 10000, wordvec_size: int = 650, hidden_size: int = 650,
                 drop_rate: float = 0.5, **kw) -> Model:
    """The book's ``BetterRnnlm`` (DLFS2 §6.5): two LSTM layers, dropout before and after each
    (TimeDropout), and weight tying (the output Affine uses the embedding W transposed).

    References: Zaremba et al., "Recurrent Neural Network Regularization" (arXiv:1409.2329);
    Press & Wolf, "Using the Output Embedding to Improve Language Models" (arXiv:1608.05859).
    """
    return model(vocab_size, wordvec_size, hidden_size,
                 Config("lstm", num_layers=2, drop_rate=drop_rate, tied=True),
                 name="BetterRnnlm", **kw)


def from_book_params(arrays, *, dtype=jnp.float32) -> Params:
    """fnn params from the book's saved list (``BaseModel.save_params``, e.g. ``ch06/Rnnlm.pkl``).

    6 arrays: ``Rnnlm`` [embed W (V, D), LSTM Wx (D, 4H), Wh (H, 4H), b (4H,), affine W (H, V),
    b (V,)] (gate order f, g, i, o, which is fnn's). 9 arrays: ``BetterRnnlm`` [embed W, Wx1, Wh1,
    b1, Wx2, Wh2, b2, embed W^T (tied, dropped), b]. The book stores float16; they are cast to
    `dtype` as the book's ``load_params`` casts them to float32.
    """
    a = [jnp.asarray(x, dtype) for x in arrays]
    if len(a) == 6:
        return {"embed": {"W": a[0]}, "lstm": {"Wx": a[1], "Wh": a[2], "b": a[3]},
                "affine": {"W": a[4], "b": a[5]}}
    if len(a) == 9:
        return {"embed": {"W": a[0]}, "lstm1": {"Wx": a[1], "Wh": a[2], "b": a[3]},
                "lstm2": {"Wx": a[4], "Wh": a[5], "b": a[6]}, "affine": {"b": a[8]}}
    raise ValueError(f"from_book_params: got {len(a)} arrays, expected 6 (Rnnlm) or 9 (BetterRnnlm)")
