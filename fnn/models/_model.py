"""`Model`: a network as a bundle of pure functions, the form `fnn.train` trains.

Each model module (`fnn.models.mlp`, ...) offers plain functions (``init(key, ...) -> params``,
``apply(params, x) -> scores``) and a constructor that binds its hyper-parameters into a `Model`:

    init(key)                                     -> (params, state)
    apply(params, state, x, *, train=False, key=None) -> (scores, state)
    loss(params, state, x, t, *, key=None)        -> (loss, state)          # training mode
    manual_grad(params, state, x, t, *, key=None) -> (loss, grads, state)   # the book's backprop

`state` holds what is not trained but changes while training (batch norm's running statistics);
it is ``{}`` for most models. It is passed in and handed back, never mutated. `loss` is what
`grad="autodiff"` differentiates with `jax.grad`; `manual_grad` must give the same numbers.
`key` feeds the layers that need randomness (dropout); models without such layers ignore it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from jax import Array

Params = Any  # a pytree of arrays, usually a dict {"W1": ..., "b1": ...}
State = Any   # a pytree of arrays, {} when the model has none


class Model(NamedTuple):
    """A network as pure functions; see the module docstring."""

    init: Callable[[Array], tuple[Params, State]]
    apply: Callable[..., tuple[Array, State]]
    loss: Callable[..., tuple[Array, State]]
    manual_grad: Callable[..., tuple[Array, Params, State]]
    name: str = "model"
