"""The book's optimizers (DLFS1 §6.1, ``common/optimizer.py``) as optax-style aliases.

Each alias returns an ``optax.GradientTransformation`` chaining the pieces of
:mod:`fnn.optim.transforms`; use it as any optax optimizer::

    opt = fnn.optim.adam(learning_rate=1e-3)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = optax.apply_updates(params, updates)      # W <- W + update

`learning_rate` is the book's ``lr``: a finite number >= 0, or an optax schedule (a callable
of the step count, 0 at the first step). Every other hyper-parameter may be a tracer, so
``jax.vmap`` over learning rates or momenta trains many models at once. In the formulas,
``W`` is any parameter leaf, ``dW`` its gradient and ``t`` the step number (1 at the first
step); every operation is element-wise.

Arguments carry optax's names (``b1``, ``b2``, ``eps``, ``decay``), so code written for optax
reads the same; the book's names (``beta1``, ``beta2``, ``decay_rate``) are accepted as keyword
aliases: ``adam(1e-3, beta1=0.8)`` is ``adam(1e-3, b1=0.8)``; giving both names of one
hyper-parameter with different values is an error.

"Measured" differences from optax below are the maximum, over 100 steps and over the leaves
of the test problem of ``tests/optim/test_transforms.py`` (a 3x4 matrix, a 4-vector and a
scalar under a coupled quadratic + quartic loss, float64), of
``max|W_fnn - W_optax| / max|W_optax|`` at the same step; ``test_alias.py`` pins each number
to within a factor of 2.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import optax

from fnn.optim import transforms as T
from fnn.optim.clip import clip_by_global_norm

# A book's name not given (None is not a valid value of any of them).
_UNSET = None

__all__ = ["adadelta", "adagrad", "adam", "get", "momentum", "nesterov", "rmsprop", "set_learning_rate", "sgd"]


def sgd(learning_rate: Any = 0.01, max_grad: float | None = None) -> optax.GradientTransformation:
    """Stochastic gradient descent, DLFS1 §6.1.2 (the book's ``SGD``), with DLFS2's clipping::

        dW <- clip_by_global_norm(dW, max_grad)    (DLFS2 §6.1.4, only when max_grad is given)
        W  <- W - lr * dW

    Without `max_grad` this equals ``optax.sgd(learning_rate)``, schedules included; with it, it is
    DLFS2's language-model optimizer (``SGD`` after ``clip_grads``; `clip_by_global_norm` says how
    the book's clipping differs from optax's).

    The learning rate is a constant of the compiled step. To change it between epochs without
    recompiling (DLFS2 §6.5.4 divides it by 4; `fnn.lm.fit_lm`'s ``lr_decay``), keep it in the
    optimizer state with optax's ``inject_hyperparams`` and change it with `set_learning_rate`::

        opt = optax.inject_hyperparams(fnn.optim.sgd)(learning_rate=20.0, max_grad=0.25)

    References:
      Robbins and Monro, "A stochastic approximation method", Ann. Math. Statist. 1951.
    """
    T.check_learning_rate("sgd", learning_rate)
    scale = T.scale_by_learning_rate(learning_rate)
    return scale if max_grad is None else optax.chain(clip_by_global_norm(max_grad), scale)


def set_learning_rate(opt_state: Any, learning_rate: float) -> Any:
    """A copy of `opt_state` whose learning rate is `learning_rate` (DLFS2 §6.5.4's ``lr /= 4``).

    `opt_state` is the state of an ``optax.inject_hyperparams`` optimizer with a ``learning_rate``
    (``optax.inject_hyperparams(fnn.optim.sgd)(learning_rate=20.0)``, see `sgd`); the learning rate
    keeps its dtype.
    """
    hp = getattr(opt_state, "hyperparams", None)
    if not isinstance(hp, dict) or "learning_rate" not in hp:
        raise ValueError(f"set_learning_rate: opt_state (a {type(opt_state).__name__}) has no "
                         f"hyperparams['learning_rate'], expected the state of an optax.inject_hyperparams "
                         f"optimizer (optax.inject_hyperparams(fnn.optim.sgd)(learning_rate=...))")
    value = jnp.asarray(learning_rate, jnp.asarray(hp["learning_rate"]).dtype)
    return opt_state._replace(hyperparams={**hp, "learning_rate": value})


def momentum(learning_rate: Any = 0.01, momentum: float = 0.9) -> optax.GradientTransformation:
    """Momentum SGD, DLFS1 §6.1.4 (the book's ``Momentum``)::

        v <- momentum * v - lr * dW          (v starts at 0)
        W <- W + v

    `momentum` (the book's alpha, "like friction") must be in [0, 1). With a constant
    learning rate this equals ``optax.sgd(lr, momentum=momentum)``, whose trace
    ``t <- dW + momentum * t`` is ``-v / lr``. Under a schedule they differ: here each
    gradient enters ``v`` scaled by the learning rate *of its own step* (the book's class
    with ``lr`` changed between steps); optax scales the whole trace by the current one.
    Measured with ``optax.exponential_decay(0.02, 20, 0.3)`` on both: 1.2 relative, i.e.
    not the same optimizer (1.3e-15, rounding, with the constant 0.02).

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
      Rumelhart, Hinton and Williams, "Learning representations by back-propagating
      errors", Nature 1986.
    """
    T.check_learning_rate("momentum", learning_rate)
    T.check_unit_interval("momentum", "momentum", momentum)
    return optax.chain(T.scale_by_learning_rate(learning_rate), T.scale_by_momentum(momentum))


def nesterov(learning_rate: Any = 0.01, momentum: float = 0.9) -> optax.GradientTransformation:
    """The book's ``Nesterov`` class (code only: ``common/optimizer.py``, beside DLFS1 §6.1.4)::

        W <- W + momentum**2 * v - (1 + momentum) * lr * dW      (v starts at 0)
        v <- momentum * v - lr * dW

    The step uses the velocity from *before* this update: the book's code since its fix of
    January 2021 ("Fix Nesterov update function"; before it, ``v`` was updated first). This is
    the Nesterov step of the paper the book cites (Bengio et al. 2013, eq. 7; Sutskever et al.
    2013), and with a constant learning rate it equals
    ``optax.sgd(lr, momentum=momentum, nesterov=True)``: measured against
    ``optax.sgd(0.02, momentum=0.9, nesterov=True)``, 3.4e-16 relative (rounding; plain
    :func:`momentum` is 0.24 away). Under a schedule each gradient enters ``v`` scaled by the
    learning rate of its own step, as for :func:`momentum`; with
    ``optax.exponential_decay(0.02, 20, 0.3)`` on both: 0.99 relative.

    References:
      Bengio, Boulanger-Lewandowski and Pascanu, "Advances in optimizing recurrent
      networks", ICASSP 2013 (arXiv:1212.0901).
      Sutskever, Martens, Dahl and Hinton, "On the importance of initialization and
      momentum in deep learning", ICML 2013.
    """
    T.check_learning_rate("nesterov", learning_rate)
    T.check_unit_interval("nesterov", "momentum", momentum)
    return optax.chain(T.scale_by_learning_rate(learning_rate), T.scale_by_book_nesterov(momentum))


def adagrad(learning_rate: Any = 0.01, *, eps: float = 1e-7) -> optax.GradientTransformation:
    """AdaGrad, DLFS1 §6.1.5 (the book's ``AdaGrad``)::

        h <- h + dW * dW                     (h starts at 0)
        W <- W - lr * dW / (sqrt(h) + eps)   (eps = 1e-7, the book's constant)

    ``optax.adagrad`` starts ``h`` at 0.1 and puts eps inside the square root,
    ``dW / sqrt(h + eps)``. With ``eps=0`` here and ``initial_accumulator_value=0, eps=0``
    there the two are equal. Measured against ``optax.adagrad(0.1)`` (its defaults):
    5.1e-2 relative, nearly all from the 0.1 start (2.7e-7 with
    ``initial_accumulator_value=0``).

    References:
      Duchi, Hazan and Singer, "Adaptive subgradient methods for online learning and
      stochastic optimization", JMLR 12, 2011.
    """
    T.check_learning_rate("adagrad", learning_rate)
    T.check_eps("adagrad", eps)
    return optax.chain(T.scale_by_adagrad(eps), T.scale_by_learning_rate(learning_rate))


def _book_name(fn: str, name: str, value: Any, default: Any, book: str, book_value: Any) -> tuple[Any, str]:
    """``(value, name)`` of a hyper-parameter, or ``(book_value, book)`` when it was given under the
    book's name (errors then name what the caller wrote)."""
    if book_value is _UNSET:
        return value, name
    if value is not book_value and value != default and value != book_value:
        raise TypeError(f"{fn}: got {name}={value!r} and {book}={book_value!r}, one hyper-parameter under "
                        f"optax's name and the book's; expected one of them")
    return book_value, book


def rmsprop(
    learning_rate: Any = 0.01, decay: float = 0.99, *, eps: float = 1e-7, decay_rate: float | None = _UNSET
) -> optax.GradientTransformation:
    """RMSprop, DLFS1 §6.1.5 (the book's ``RMSprop``)::

        h <- decay * h + (1 - decay) * dW * dW     (h starts at 0)
        W <- W - lr * dW / (sqrt(h) + eps)          (eps = 1e-7)

    `decay` (optax's name; the book's `decay_rate`, accepted as an alias) is the weight *kept*
    on the old average: 0.99 forgets slowly.
    Equals ``optax.rmsprop(lr, decay=decay, eps=eps, eps_in_sqrt=False)``. Measured
    against ``optax.rmsprop(0.01, decay=0.99)`` (eps 1e-8 inside the square root): 2.7e-6
    relative.

    References:
      Tieleman and Hinton, "Lecture 6.5 - RMSprop", COURSERA: Neural Networks for Machine
      Learning, 2012.
    """
    decay, decay_name = _book_name("rmsprop", "decay", decay, 0.99, "decay_rate", decay_rate)
    T.check_learning_rate("rmsprop", learning_rate)
    T.check_unit_interval("rmsprop", decay_name, decay)
    T.check_eps("rmsprop", eps)
    return optax.chain(T.scale_by_rmsprop(decay, eps), T.scale_by_learning_rate(learning_rate))


def adam(
    learning_rate: Any = 0.001, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7, *,
    beta1: float | None = _UNSET, beta2: float | None = _UNSET,
) -> optax.GradientTransformation:
    """Adam, DLFS1 §6.1.6 (the book's ``Adam``), bias correction folded into the rate::

        m <- m + (1 - b1) * (dW - m)                       (m, v start at 0)
        v <- v + (1 - b2) * (dW * dW - v)
        lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t)
        W <- W - lr_t * m / (sqrt(v) + eps)                (eps = 1e-7)

    `b1`, `b2`, `eps` are optax's names; the book's `beta1`, `beta2` are accepted as aliases.

    This is the "more efficient" ordering of Kingma and Ba (end of §2). Here `v` is the
    second moment, not Momentum's velocity. It is ``optax.adam``'s
    ``m_hat / (sqrt(v_hat) + eps)`` with eps replaced by ``eps / sqrt(1 - b2**t)``
    (3.2e-6 at t = 1, 1e-7 as t grows); with ``eps=0`` on both sides they are equal,
    schedules included. Measured against ``optax.adam(0.01)`` (eps=1e-8): 1.2e-6 relative
    (1.1e-6 against ``optax.adam(0.01, eps=1e-7)``).

    References:
      Kingma and Ba, "Adam: A method for stochastic optimization", ICLR 2015
      (arXiv:1412.6980).
    """
    b1, b1_name = _book_name("adam", "b1", b1, 0.9, "beta1", beta1)
    b2, b2_name = _book_name("adam", "b2", b2, 0.999, "beta2", beta2)
    T.check_learning_rate("adam", learning_rate)
    T.check_unit_interval("adam", b1_name, b1)
    T.check_unit_interval("adam", b2_name, b2)
    T.check_eps("adam", eps)
    return optax.chain(T.scale_by_book_adam(b1, b2, eps), T.scale_by_learning_rate(learning_rate))


def adadelta(learning_rate: Any = 1.0, rho: float = 0.95, eps: float = 1e-6) -> optax.GradientTransformation:
    """AdaDelta (Zeiler 2012, Algorithm 1; not in the book's code)::

        E[g2]  <- rho * E[g2] + (1 - rho) * dW * dW                  (all start at 0)
        dx      = sqrt(E[dx2] + eps) / sqrt(E[g2] + eps) * dW
        E[dx2] <- rho * E[dx2] + (1 - rho) * dx * dx
        W <- W - lr * dx

    The paper has no learning rate (``lr = 1``); ``E[dx2]`` averages the step before the
    learning rate scales it. Equals ``optax.adadelta(lr, rho=rho, eps=eps)``.

    References:
      Zeiler, "ADADELTA: An adaptive learning rate method", arXiv:1212.5701, 2012.
    """
    T.check_learning_rate("adadelta", learning_rate)
    T.check_unit_interval("adadelta", "rho", rho)
    T.check_eps("adadelta", eps, positive=True)
    return optax.chain(T.scale_by_adadelta(rho, eps), T.scale_by_learning_rate(learning_rate))


_OPTIMIZERS = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "adadelta": adadelta,
}


def get(name: str, **kwargs: Any) -> optax.GradientTransformation:
    """The optimizer called `name` (case-insensitive), built with `kwargs`.

    The book's ``Trainer`` looks its optimizers up the same way (and spells RMSprop's key
    ``"rmsprpo"``; here it is ``"rmsprop"``).
    """
    key = name.lower() if isinstance(name, str) else None
    if key not in _OPTIMIZERS:
        raise ValueError(f"optim.get: unknown optimizer {name!r}, expected one of {list(_OPTIMIZERS)}")
    return _OPTIMIZERS[key](**kwargs)
