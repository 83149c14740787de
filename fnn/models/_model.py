"""`Model`, the bundle of pure functions that `fnn.train` trains (its contract is its docstring), and
what every model module shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from jax import Array

Params = Any  # a pytree of arrays, usually a dict {"W1": ..., "b1": ...}
State = Any   # a pytree of arrays, {} when the model has none


class Model(NamedTuple):
    """A network as a bundle of pure functions: what `fnn.train.fit` trains and `fnn.multi` vmaps.

    A model module's constructor builds one and binds its hyper-parameters (sizes, activation,
    dropout rate, ...), so that every field is a plain function of arrays::

        init(key)                                          -> (params, state)
        apply(params, state, x, *, train=False, key=None)  -> (scores, state)
        loss(params, state, x, t, *, key=None)             -> (loss, state)          # training mode
        manual_grad(params, state, x, t, *, key=None)      -> (loss, grads, state)   # the book's backprop
        name                                               a label for progress bars and results
        evaluate(params, state, x, t)  -> (loss (N,), correct (N,))   # optional, default None

    * ``params``: the trained arrays, a pytree with the book's names (``{"W1": ..., "b1": ...}``).
      ``grads`` has the same structure.
    * ``state``: what is not trained but changes while training (batch norm's running statistics,
      a language model's recurrent carry); ``{}`` for most models. It is passed in and handed back,
      never mutated.
    * ``x``, ``t``: a batch of inputs and labels (integer classes, or one-hot where the book allows it).
    * ``key``: a `jax.random` key for the layers that draw random numbers in training (dropout);
      models without such layers ignore it.

    ``loss`` is what ``grad="autodiff"`` differentiates with ``jax.grad``; ``manual_grad`` runs the
    layers' hand-written backward passes (``grad="manual"``) and must give the same loss and
    gradients (in float64, to a relative error below 1e-6). Both run in training mode; ``apply``
    with ``train=False`` is the book's ``predict``.

    ``evaluate`` (optional) is a model's own evaluation rule, per sample: ``loss`` and ``correct``
    (1.0 right, 0.0 wrong) of each of the N samples of a batch. `fnn.step.make_evaluate` (hence
    `fnn.train.fit`) averages them instead of comparing ``apply``'s scores with labels; a seq2seq
    model's is the book's ``eval_seq2seq`` (DLFS2 §7.3.4): an answer is right when its greedy
    decoding is right in every character. None (the default): the classifier's rule, argmax of the
    scores against the labels.

    The modules' plain functions (``mlp.init(key, 784, [50], 10) -> params``, ``mlp.apply(params,
    x)``) take the hyper-parameters as arguments and no state; the fields of a `Model` have them
    bound. Example::

        import jax
        from fnn.models import mlp

        net = mlp.model(784, 50, 10)                   # the book's TwoLayerNet shape
        params, state = net.init(jax.random.key(0))
        scores, state = net.apply(params, state, x)    # x (N, 784) -> scores (N, 10)
        loss, grads, state = net.manual_grad(params, state, x, t)
    """

    init: Callable[[Array], tuple[Params, State]]
    apply: Callable[..., tuple[Array, State]]
    loss: Callable[..., tuple[Array, State]]
    manual_grad: Callable[..., tuple[Array, Params, State]]
    name: str = "model"
    evaluate: Callable[..., tuple[Array, Array]] | None = None


Model.init.__doc__ = "init(key) -> (params, state): fresh parameters and the initial model state."
Model.apply.__doc__ = ("apply(params, state, x, *, train=False, key=None) -> (scores, state): the "
                       "forward pass (the book's predict with train=False).")
Model.loss.__doc__ = ("loss(params, state, x, t, *, key=None) -> (loss, state): the training-mode "
                      "loss, what jax.grad differentiates.")
Model.manual_grad.__doc__ = ("manual_grad(params, state, x, t, *, key=None) -> (loss, grads, state): "
                             "the loss and its gradient by the book's backprop.")
Model.name.__doc__ = "A label for progress bars, logs and result.json."
Model.evaluate.__doc__ = ("evaluate(params, state, x, t) -> (loss (N,), correct (N,)) per sample, or None: "
                          "the model's own evaluation rule, which make_evaluate averages (None: argmax of "
                          "apply's scores against the labels).")
Model.__module__ = "fnn.models"  # where users import it from


def check_positive_int(fn: str, name: str, value) -> None:
    """Raise ValueError unless `value` is a positive int (not a bool)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{fn}: {name} is {value!r}, expected a positive integer")
