"""Sequence to sequence: Encoder, Decoder, Seq2seq, and the peeky variants (DLFS2 §7.3–7.4).

    questions xs (N, T_q) -> Encoder: TimeEmbedding -> TimeLSTM (from zeros) -> h = hs[:, -1] (N, H)
    answers   ts (N, T_a) -> Decoder: TimeEmbedding(ts[:, :-1]) -> TimeLSTM from (h, 0) -> TimeAffine
              -> scores (N, T_a - 1, V)  -> TimeSoftmaxWithLoss with labels ts[:, 1:]

Shapes: N batch, T_q question length, T_a answer length (its first character is the start symbol
``_``, DLFS2 §7.2.3), V vocabulary (characters), D word-vector size, H hidden size. Parameters, one
dict per layer with the book's names::

    {"encoder": {"embed": {"W": (V, D)}, "lstm": {"Wx": (D, 4H), "Wh": (H, 4H), "b": (4H,)}},
     "decoder": {"embed": {"W": (V, D)}, "lstm": {"Wx": (D, 4H), ...}, "affine": {"W": (H, V), "b": (V,)}}}

The peeky decoder (DLFS2 §7.4.2, ``PeekyDecoder``) concatenates the encoder's h to every input of
its TimeLSTM and of its TimeAffine (``Wx (H + D, 4H)``, ``affine W (2H, V)``). The reversed input
(DLFS2 §7.4.1) is a change of the data, not of the model: ``load_sequence(..., reverse=True)``, the
book's ``x_train[:, ::-1]``.

Both networks run on `fnn.models.runner` (`encoder`, `decoder` list their nodes); the loss layer and
the link between the two networks stay here. The decoder's TimeLSTM starts from the carry ``(h, 0)``
(the book's ``lstm.set_state(h)``) and the runner's backward hands back its gradient, the book's
``lstm.dh``, which becomes the encoder's upstream gradient. The peeky decoder's two `peek` nodes read
h as if it were a parameter of the decoder (``params["decoder"]["h"]`` while the decoder runs): the
runner sums the gradients of a parameter read by two nodes, which is the book's
``dh = lstm.dh + sum(dhs0 + dhs1)``. `fnn.models.attention_seq2seq` builds DLFS2 ch8's model from
the same pieces (`Nets`, `build`).

Generation is the book's greedy ``Decoder.generate`` (argmax at each step, fed back as the next
input), all N questions at once under one `lax.scan`; `evaluate` is its ``eval_seq2seq`` rule:
an answer counts as right only when every character is (DLFS2 §7.3.4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from fnn import functions as F
from fnn._checks import check_ndim, check_positive_int
from fnn.layers import recurrent as R
from fnn.layers import time as TL
from fnn.layers.core import NO_PARAMS, Layer
from fnn.models import runner
from fnn.models._model import Model, Params
from fnn.models.runner import Node

__all__ = ["Nets", "PEEKY", "SEQ2SEQ", "build", "decoder", "encoder", "evaluate", "from_book_params", "generate",
           "init", "loss", "manual_grad", "model", "peek", "peeky_seq2seq", "seq2seq"]

# --------------------------------------------------------------------------------------------
# The peeky glue layer (DLFS2 §7.4.2)
# --------------------------------------------------------------------------------------------


def _peek_forward(h: Array, xs: Array):
    """out[:, t] = concat(h, xs[:, t]): h (N, H), xs (N, T, D) -> (N, T, H + D) (DLFS2 §7.4.2,
    ``PeekyDecoder.forward``: h repeated over the T steps, in front of the step's input)."""
    N, T, _ = xs.shape
    if h.ndim != 2 or h.shape[0] != N:
        raise ValueError(f"peek.forward: h has shape {tuple(h.shape)}, expected ({N}, H) to match xs "
                         f"of shape {tuple(xs.shape)}")
    return jnp.concatenate([jnp.broadcast_to(h[:, None, :], (N, T, h.shape[1])), xs], axis=2), h.shape[1]


def _peek_backward(h: Array, H: int, dout: Array):
    """dh = sum_t dout[:, t, :H], dxs = dout[:, :, H:] (DLFS2 §7.4.2, ``PeekyDecoder.backward``: the
    repeat's backward is a sum over the steps)."""
    return jnp.sum(dout[:, :, :H], axis=1), dout[:, :, H:]


# forward(h, xs) -> (concat(h, xs) (N, T, H + D), H); backward(h, H, dout) -> (dh, dxs). The
# encoder's h takes a parameter's place, so the runner sums what the decoder's two peeks give back.
peek = Layer(_peek_forward, _peek_backward)


# --------------------------------------------------------------------------------------------
# The networks
# --------------------------------------------------------------------------------------------


def encoder(*, all_states: bool = False) -> tuple[Node, ...]:
    """The book's ``Encoder`` (DLFS2 §7.3.1): TimeEmbedding, TimeLSTM from zeros (stateless), and the
    last hidden state h (N, H); ``all_states=True`` keeps every hidden state hs (N, T_q, H), the
    ``AttentionEncoder`` of DLFS2 §8.2.1."""
    nodes = (Node("TimeEmbedding", TL.time_embedding, "embed"),
             Node("TimeLSTM", R.time_lstm, "lstm", carry=True))
    return nodes if all_states else (*nodes, Node("last step", runner.last_step))


def decoder(*, peeky: bool = False) -> tuple[Node, ...]:
    """The book's ``Decoder`` (DLFS2 §7.3.2): TimeEmbedding, TimeLSTM starting from the carry under
    the state key ``"lstm"``, TimeAffine; ``peeky=True`` is ``PeekyDecoder`` (DLFS2 §7.4.2), the
    encoder's h (``params["h"]``) concatenated in front of the TimeLSTM's and TimeAffine's inputs."""
    look = (Node("peek", peek, "h"),) if peeky else ()
    return (Node("TimeEmbedding", TL.time_embedding, "embed"), *look,
            Node("TimeLSTM", R.time_lstm, "lstm", state="lstm", carry=True), *look,
            Node("TimeAffine", TL.time_affine, "affine"))


class Nets(NamedTuple):
    """What distinguishes the book's seq2seq models: the two networks and how they are linked."""

    name: str                      # "Seq2seq", "PeekySeq2seq", "AttentionSeq2seq": errors and results
    encoder: tuple[Node, ...]      # xs (N, T_q) -> its output: h (N, H), or hs (N, T_q, H)
    decoder: tuple[Node, ...]      # ts_in (N, T) -> scores (N, T, V); its TimeLSTM's carry is "lstm"
    context: str | None = None     # decoder params key under which its nodes read the encoder's output
    all_states: bool = False       # the encoder's output is hs; the decoder starts from hs[:, -1]
    attention: int | None = None   # index of the decoder node whose cache's ``a`` is the attention map


SEQ2SEQ = Nets("Seq2seq", encoder(), decoder())
PEEKY = Nets("PeekySeq2seq", encoder(), decoder(peeky=True), context="h")


# --------------------------------------------------------------------------------------------
# Forward, loss, the book's backward
# --------------------------------------------------------------------------------------------


def _check(fn: str, xs: Array, ts: Array | None = None) -> None:
    check_ndim(fn, "xs", xs, 2, "(N, T_q) character ids")
    if xs.shape[0] == 0 or xs.shape[1] == 0:
        raise ValueError(f"{fn}: xs has shape {tuple(xs.shape)}, expected N >= 1 questions of T_q >= 1 ids")
    if ts is None:
        return
    check_ndim(fn, "ts", ts, 2, "(N, T_a) character ids, the start symbol first")
    if ts.shape[0] != xs.shape[0] or ts.shape[1] < 2:
        raise ValueError(f"{fn}: ts has shape {tuple(ts.shape)}, expected ({xs.shape[0]}, T_a) with T_a >= 2 "
                         f"(the start symbol and at least one character) to match xs {tuple(xs.shape)}")


def _encode(nets: Nets, params: Params, xs: Array, *, fast: bool = True):
    """(the encoder's output, its caches (None when fast))."""
    out, caches, _ = runner.forward(nets.encoder, params["encoder"], xs, fast=fast, name=f"{nets.name} encoder")
    return out, caches


def _link(nets: Nets, params: Params, enc: Array):
    """The decoder's params (with the encoder's output under `nets.context`) and its start state
    ``{"lstm": (h, 0)}`` (the book's ``self.lstm.set_state(h)``: c starts from zeros)."""
    dec = params["decoder"] if nets.context is None else {**params["decoder"], nets.context: enc}
    h = enc[:, -1] if nets.all_states else enc
    return dec, {"lstm": (h, jnp.zeros_like(h))}


def _forward(nets: Nets, params: Params, xs: Array, ts: Array, *, fast: bool):
    """Teacher forcing (DLFS2 §7.3.3, ``Seq2seq.forward``): the decoder reads ts[:, :-1]; returns the
    scores (N, T_a - 1, V) and what the backward needs."""
    _check(nets.name, xs, ts)
    enc, enc_caches = _encode(nets, params, xs, fast=fast)
    dec, state = _link(nets, params, enc)
    scores, dec_caches, _ = runner.forward(nets.decoder, dec, ts[:, :-1], state=state, fast=fast,
                                           name=f"{nets.name} decoder")
    return scores, (enc, enc_caches, dec, dec_caches)


def loss(params: Params, xs: Array, ts: Array, nets: Nets = SEQ2SEQ) -> Array:
    """Mean cross-entropy of the decoder's scores against ts[:, 1:] (DLFS2 §7.3.3, ``Seq2seq.forward``);
    xs (N, T_q), ts (N, T_a) ids with the start symbol first."""
    scores, _ = _forward(nets, params, xs, ts, fast=True)
    return TL.time_softmax_with_loss.forward(NO_PARAMS, scores, ts[:, 1:])[0]


def manual_grad(params: Params, xs: Array, ts: Array, nets: Nets = SEQ2SEQ) -> tuple[Array, Params]:
    """``(loss, grads)`` by the layers' hand-written backward passes (DLFS2 §7.3.3,
    ``Seq2seq.backward``): the loss layer, the decoder in reverse, then the encoder fed with the
    gradient of what the decoder read from it: ``lstm.dh`` (+ the peeks' sum, DLFS2 §7.4.2; into
    ``dhs[:, -1]`` plus the attention's dhs, DLFS2 §8.2.2)."""
    scores, (enc, enc_caches, dec, dec_caches) = _forward(nets, params, xs, ts, fast=False)
    value, loss_cache = TL.time_softmax_with_loss.forward(NO_PARAMS, scores, ts[:, 1:])
    _, dscores = TL.time_softmax_with_loss.backward(NO_PARAMS, loss_cache, 1.0)
    dec_grads, _, dstate = runner.backward(nets.decoder, dec, dec_caches, dscores)
    dh = dstate["lstm"][0]  # the book's self.lstm.dh (c started from constant zeros)
    d_context = dec_grads.pop(nets.context) if nets.context is not None else None
    if nets.all_states:      # AttentionDecoder.backward: denc_hs[:, -1] += dh
        denc = runner.last_step.backward(NO_PARAMS, enc.shape, dh)[1]
        denc = denc if d_context is None else denc + d_context
    else:                    # PeekyDecoder.backward: dh = lstm.dh + sum(dhs)
        denc = dh if d_context is None else dh + d_context
    enc_grads, _, _ = runner.backward(nets.encoder, params["encoder"], enc_caches, denc)
    return value, {"encoder": enc_grads, "decoder": dec_grads}


# --------------------------------------------------------------------------------------------
# Greedy generation and the book's evaluation
# --------------------------------------------------------------------------------------------


def _greedy(nets: Nets, params: Params, enc: Array, start_ids: Array, sample_size: int):
    """``(ids (N, S), scores (N, S, V), a (N, S, T_q) or None)``: S steps of the decoder on its own
    argmax (DLFS2 §7.3.2, ``Decoder.generate``), one `lax.scan` over the steps."""
    dec, state = _link(nets, params, enc)

    def body(carry, _):
        ids, state = carry
        scores, caches, state = runner.forward(nets.decoder, dec, ids[:, None], state=state,
                                               fast=nets.attention is None, name=f"{nets.name} decoder")
        nxt = jnp.argmax(scores[:, 0], axis=-1).astype(ids.dtype)  # the first maximum, as np.argmax
        a = None if nets.attention is None else caches[nets.attention].a[:, 0]
        return (nxt, state), (nxt, scores[:, 0], a)

    _, (ids, scores, a) = jax.lax.scan(body, (start_ids, state), None, length=sample_size)
    return ids.T, scores.swapaxes(0, 1), (None if a is None else a.swapaxes(0, 1))


def _start(fn: str, start_id, N: int) -> Array:
    start = jnp.asarray(start_id)
    if not jnp.issubdtype(start.dtype, jnp.integer) or start.shape not in ((), (N,)):
        raise ValueError(f"{fn}: start_id has dtype {start.dtype} and shape {tuple(start.shape)}, expected "
                         f"an integer id or ({N},) ids")
    return jnp.broadcast_to(start.astype(jnp.int32), (N,))


def generate(params: Params, xs: Array, start_id, sample_size: int, nets: Nets = SEQ2SEQ):
    """Greedy answers ``(ids (N, S), attention weights (N, S, T_q) or None)`` to the questions xs
    (N, T_q), starting from `start_id` (an id or one per question), `sample_size` = S characters
    (DLFS2 §7.3.2, ``Seq2seq.generate``: argmax at each step, fed back as the next input). Jit it
    with `sample_size` static (`evaluate` runs it under `jit`)."""
    sample_size = check_positive_int("generate", "sample_size", sample_size)
    _check(f"{nets.name} generate", xs)
    ids, _, a = _greedy(nets, params, _encode(nets, params, xs)[0], _start("generate", start_id, xs.shape[0]),
                        sample_size)
    return ids, a


def evaluate(params: Params, xs: Array, ts: Array, nets: Nets = SEQ2SEQ) -> tuple[Array, Array]:
    """``(loss (N,), correct (N,))`` per question: the teacher-forced loss (mean over the answer's
    characters) and the book's ``eval_seq2seq`` (DLFS2 §7.3.4): 1.0 when the greedy answer started
    from ts[:, 0] equals ts[:, 1:] in every character, else 0.0."""
    scores, (enc, *_) = _forward(nets, params, xs, ts, fast=True)
    logp = F.log_softmax(scores.astype(jnp.promote_types(scores.dtype, jnp.float32)))
    nll = -jnp.take_along_axis(logp, ts[:, 1:, None], axis=-1)[..., 0].mean(axis=1)
    ids, _, _ = _greedy(nets, params, enc, ts[:, 0].astype(jnp.int32), ts.shape[1] - 1)
    return nll, jnp.all(ids == ts[:, 1:], axis=1).astype(nll.dtype)


# --------------------------------------------------------------------------------------------
# Parameters and the Model
# --------------------------------------------------------------------------------------------


def init(key: Array, vocab_size: int, wordvec_size: int, hidden_size: int, *, peeky: bool = False,
         affine_in: int | None = None, dtype=jnp.float32) -> Params:
    """The book's initialisation (DLFS2 §7.3.1–7.3.2, §7.4.2): embed W ~ N(0, 0.01^2), Wx ~ N(0, 1/in),
    Wh ~ N(0, 1/H), affine W ~ N(0, 1/in), biases zero. The peeky decoder's inputs are H + D (TimeLSTM)
    and 2H (TimeAffine); `affine_in` sets the TimeAffine's input size (2H for ``AttentionDecoder``)."""
    V, D, H = (check_positive_int("seq2seq.init", n, v) for n, v in
               (("vocab_size", vocab_size), ("wordvec_size", wordvec_size), ("hidden_size", hidden_size)))
    affine_in = (2 * H if peeky else H) if affine_in is None else affine_in
    k = jax.random.split(key, 5)
    return {"encoder": {"embed": {"W": jax.random.normal(k[0], (V, D), dtype) / 100},
                        "lstm": R.init(k[1], "lstm", D, H, dtype=dtype)},
            "decoder": {"embed": {"W": jax.random.normal(k[2], (V, D), dtype) / 100},
                        "lstm": R.init(k[3], "lstm", H + D if peeky else D, H, dtype=dtype),
                        "affine": {"W": (jax.random.normal(k[4], (affine_in, V), dtype)
                                         / jnp.sqrt(affine_in).astype(dtype)),
                                   "b": jnp.zeros((V,), dtype)}}}


def build(nets: Nets, init_fn: Callable[[Array], Params], *, start_id: int | None = None,
          answer_size: int | None = None, name: str | None = None) -> Model:
    """A seq2seq `Model` from its networks and initialiser (what `model` and
    ``attention_seq2seq.model`` share). ``x`` = questions (N, T_q), ``t`` = answers (N, T_a) with the
    start symbol first; ``evaluate`` is the book's exact-match rule (`evaluate`). ``apply`` is the
    greedy answer's scores (N, answer_size, V) from `start_id`, so it needs both given here."""

    def apply_(params, state, x, *, train=False, key=None):
        if start_id is None or answer_size is None:
            raise ValueError(f"{nets.name} apply: start_id is {start_id!r} and answer_size is {answer_size!r}, "
                             f"expected both (build the model with start_id=char_to_id['_'], "
                             f"answer_size=t.shape[1] - 1), or call generate/evaluate")
        _check(f"{nets.name} apply", x)
        enc = _encode(nets, params, x)[0]
        return _greedy(nets, params, enc, _start(f"{nets.name} apply", start_id, x.shape[0]), answer_size)[1], state

    def loss_(params, state, x, t, *, key=None):
        return loss(params, x, t, nets), state

    def manual_grad_(params, state, x, t, *, key=None):
        value, grads = manual_grad(params, x, t, nets)
        return value, grads, state

    def evaluate_(params, state, x, t):
        return evaluate(params, x, t, nets)

    if answer_size is not None:
        check_positive_int(f"{nets.name} model", "answer_size", answer_size)
    return Model(lambda key: (init_fn(key), {}), apply_, loss_, manual_grad_, name=name or nets.name,
                 evaluate=evaluate_)


def model(vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, *, peeky: bool = False,
          start_id: int | None = None, answer_size: int | None = None, dtype=jnp.float32) -> Model:
    """The book's ``Seq2seq`` (DLFS2 §7.3.3) or, with ``peeky=True``, ``PeekySeq2seq`` (§7.4.2), as a
    `Model` for `fnn.train.fit`; the defaults are ``train_seq2seq.py``'s sizes. See `build`."""
    nets = PEEKY if peeky else SEQ2SEQ
    V, D, H = (check_positive_int("seq2seq.model", n, v) for n, v in
               (("vocab_size", vocab_size), ("wordvec_size", wordvec_size), ("hidden_size", hidden_size)))
    return build(nets, lambda key: init(key, V, D, H, peeky=peeky, dtype=dtype), start_id=start_id,
                 answer_size=answer_size, name=f"{nets.name}[V={V},D={D},H={H}]")


def seq2seq(vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, **kw) -> Model:
    """The book's ``Seq2seq`` (DLFS2 §7.3.3): Encoder + Decoder."""
    return model(vocab_size, wordvec_size, hidden_size, **kw)


def peeky_seq2seq(vocab_size: int, wordvec_size: int = 16, hidden_size: int = 128, **kw) -> Model:
    """The book's ``PeekySeq2seq`` (DLFS2 §7.4.2): Encoder + PeekyDecoder."""
    return model(vocab_size, wordvec_size, hidden_size, peeky=True, **kw)


def from_book_params(arrays, *, dtype=jnp.float32) -> Params:
    """fnn params from the book's saved list (``BaseModel.save_params``; ``Seq2seq``, ``PeekySeq2seq``
    and ``AttentionSeq2seq`` keep the same order, e.g. ``ch08/AttentionSeq2seq.pkl``): encoder [embed
    W, Wx, Wh, b], decoder [embed W, Wx, Wh, b, affine W, b] (gates f, g, i, o: fnn's order). The book
    stores float16; they are cast to `dtype` as the book's ``load_params`` casts them to float32."""
    a = [jnp.asarray(x, dtype) for x in arrays]
    if len(a) != 10:
        raise ValueError(f"seq2seq.from_book_params: got {len(a)} arrays, expected the book's 10 (encoder "
                         f"embed W, Wx, Wh, b; decoder embed W, Wx, Wh, b, affine W, b)")
    return {"encoder": {"embed": {"W": a[0]}, "lstm": {"Wx": a[1], "Wh": a[2], "b": a[3]}},
            "decoder": {"embed": {"W": a[4]}, "lstm": {"Wx": a[5], "Wh": a[6], "b": a[7]},
                        "affine": {"W": a[8], "b": a[9]}}}
