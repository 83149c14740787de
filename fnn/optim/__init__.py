"""Hand-written optimizers as optax ``GradientTransformation``s (DLFS1 §6.1).

The book's update rules (``common/optimizer.py``) as thin aliases (:mod:`fnn.optim.alias`)
over small composable pieces (:mod:`fnn.optim.transforms`), plus DLFS2's gradient clipping
(:mod:`fnn.optim.clip`). Each drops into any ``optax.chain``.
"""

from fnn.optim.alias import adadelta, adagrad, adam, get, momentum, nesterov, rmsprop, set_learning_rate, sgd
from fnn.optim.clip import clip_by_global_norm, global_norm
from fnn.optim.transforms import (
    AdaDeltaState,
    AdaGradState,
    BookAdamState,
    BookNesterovState,
    MomentumState,
    RMSpropState,
    ScaleByLearningRateState,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_book_adam,
    scale_by_book_nesterov,
    scale_by_learning_rate,
    scale_by_momentum,
    scale_by_rmsprop,
)

__all__ = [
    "AdaDeltaState",
    "AdaGradState",
    "BookAdamState",
    "BookNesterovState",
    "MomentumState",
    "RMSpropState",
    "ScaleByLearningRateState",
    "adadelta",
    "adagrad",
    "adam",
    "clip_by_global_norm",
    "get",
    "global_norm",
    "momentum",
    "nesterov",
    "rmsprop",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_book_adam",
    "scale_by_book_nesterov",
    "scale_by_learning_rate",
    "scale_by_momentum",
    "scale_by_rmsprop",
    "set_learning_rate",
    "sgd",
]
