"""Seq2seq with attention: AttentionEncoder, AttentionDecoder, AttentionSeq2seq (DLFS2 §8.2).

    questions xs (N, T_q) -> AttentionEncoder: TimeEmbedding -> TimeLSTM -> hs (N, T_q, H), every state
    answers   ts (N, T_a) -> AttentionDecoder: TimeEmbedding(ts[:, :-1]) -> TimeLSTM from (hs[:, -1], 0)
              -> dec_hs (N, T, H) -> TimeAttention(hs, dec_hs) = c (N, T, H) -> concat(c, dec_hs)
              -> TimeAffine -> scores (N, T, V)  -> TimeSoftmaxWithLoss with labels ts[:, 1:]

Parameters as `fnn.models.seq2seq`'s (the attention has none), with ``affine W (2H, V)``. The book's
trained ``ch08/AttentionSeq2seq.pkl`` loads with `fnn.models.seq2seq.from_book_params`.

The networks run on `fnn.models.runner`, as Seq2seq's do (`fnn.models.seq2seq.build` makes the
`Model`): the decoder's attention node reads the encoder's hs as if it were a parameter
(``params["decoder"]["hs"]``), and the book's ``denc_hs`` is the gradient the runner hands back for
it, plus the TimeLSTM's ``dh`` into its last step. `generate` also returns the attention weights of
each greedy step, the map of DLFS2 §8.3.3 (Fig. 8-26).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from fnn._checks import check_positive_int
from fnn.layers import attention as A
from fnn.layers import recurrent as R
from fnn.layers import time as TL
from fnn.layers.core import NO_PARAMS, Layer
from fnn.models import seq2seq as S
from fnn.models._model import Model, Params
from fnn.models.runner import Node

__all__ = ["ATTENTION", "attend", "decoder", "evaluate", "generate", "init", "loss", "manual_grad", "model"]

# --------------------------------------------------------------------------------------------
# The decoder's glue: TimeAttention, then the context concatenated with the decoder's states
# --------------------------------------------------------------------------------------------


def _attend_forward(hs_enc: Array, hs_dec: Array):
    """out = concat(c, hs_dec) with c = TimeAttention(hs_enc, hs_dec): (N, T, H) -> (N, T, 2H)
    (DLFS2 §8.2.2, ``AttentionDecoder.forward``). The cache is TimeAttention's (its ``a``: the
    weights (N, T, T_q))."""
    c, cache = A.time_attention.forward(NO_PARAMS, hs_enc, hs_dec)
    return jnp.concatenate([c, hs_dec], axis=2), cache


def _attend_backward(hs_enc: Array, cache: A.TimeCache, dout: Array):
    """dc, dhs_dec0 = dout[..., :H], dout[..., H:]; TimeAttention's backward gives dhs_enc and
    dhs_dec1; dhs_dec = dhs_dec0 + dhs_dec1 (DLFS2 §8.2.2, ``AttentionDecoder.backward``)."""
    H = cache.hs_dec.shape[2]
    _, (dhs_enc, dhs_dec) = A.time_attention.backward(NO_PARAMS, cache, dout[:, :, :H])
    return dhs_enc, dout[:, :, H:] + dhs_dec


# forward(hs_enc, hs_dec) -> (concat(c, hs_dec), TimeCache); backward(hs_enc, cache, dout) ->
# (dhs_enc, dhs_dec). The encoder's hs takes a parameter's place: its gradient is the book's denc_hs.
attend = Layer(_attend_forward, _attend_backward)


def decoder() -> tuple[Node, ...]:
    """The book's ``AttentionDecoder`` (DLFS2 §8.2.2): TimeEmbedding, TimeLSTM from the carry
    ``"lstm"`` (hs[:, -1], 0), `attend` over the encoder's hs (``params["hs"]``), TimeAffine."""
    return (Node("TimeEmbedding", TL.time_embedding, "embed"),
            Node("TimeLSTM", R.time_lstm, "lstm", state="lstm", carry=True),
            Node("TimeAttention", attend, "hs"),
            Node("TimeAffine", TL.time_affine, "affine"))


# AttentionEncoder (DLFS2 §8.2.1) is the Encoder keeping every hidden state.
ATTENTION = S.Nets("AttentionSeq2seq", S.encoder(all_states=True), decoder(), context="hs", all_states=True,
                   attention=2)


def init(key: Array, vocab_size: int, wordvec_size: int, hidden_size: int, *, dtype=jnp.float32) -> Params:
    """The book's initialisation (DLFS2 §8.2.2, ``AttentionDecoder.__init__``): Seq2seq's, with the
    TimeAffine reading 2H inputs (affine W ~ N(0, 1/2H))."""
    return S.init(key, vocab_size, wordvec_size, hidden_size, affine_in=2 * hidden_size, dtype=dtype)


def loss(params: Params, xs: Array, ts: Array) -> Array:
    """Mean cross-entropy of the decoder's scores against ts[:, 1:] (DLFS2 §8.2.3, ``AttentionSeq2seq``)."""
    return S.loss(params, xs, ts, ATTENTION)


def manual_grad(params: Params, xs: Array, ts: Array) -> tuple[Array, Params]:
    """``(loss, grads)`` by the book's backward (DLFS2 §8.2.2–8.2.3): the decoder's in reverse, then
    the encoder's from ``denc_hs`` (the attention's dhs, plus the TimeLSTM's dh into the last step)."""
    return S.manual_grad(params, xs, ts, ATTENTION)


def generate(params: Params, xs: Array, start_id, sample_size: int) -> tuple[Array, Array]:
    """Greedy answers ``(ids (N, S), attention weights (N, S, T_q))`` (DLFS2 §8.2.2,
    ``AttentionDecoder.generate``; row s of the weights is the map of Fig. 8-26 for output s)."""
    return S.generate(params, xs, start_id, sample_size, ATTENTION)


def evaluate(params: Params, xs: Array, ts: Array) -> tuple[Array, Array]:
    """``(loss (N,), correct (N,))``, the book's ``eval_seq2seq`` rule (DLFS2 §7.3.4, §8.3.2)."""
    return S.evaluate(params, xs, ts, ATTENTION)


def model(vocab_size: int, wordvec_size: int = 16, hidden_size: int = 256, *, start_id: int | None = None,
          answer_size: int | None = None, dtype=jnp.float32) -> Model:
    """The book's ``AttentionSeq2seq`` (DLFS2 §8.2.3) as a `Model` for `fnn.train.fit`; the defaults are
    ``ch08/train.py``'s sizes. See `fnn.models.seq2seq.build`."""
    V, D, H = (check_positive_int("attention_seq2seq.model", n, v) for n, v in
               (("vocab_size", vocab_size), ("wordvec_size", wordvec_size), ("hidden_size", hidden_size)))
    return S.build(ATTENTION, lambda key: init(key, V, D, H, dtype=dtype), start_id=start_id,
                   answer_size=answer_size, name=f"AttentionSeq2seq[V={V},D={D},H={H}]")
