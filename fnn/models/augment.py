"""A model trained on augmented batches (DLFS1 §8.1.2): the image transforms of `fnn.data.augment`
applied inside the model's training loss, so that `fnn.train.fit` trains with augmentation without a
loop of its own, and evaluation (`apply`) sees the images as they are.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fnn.data.augment import augment
from fnn.models._model import Model

__all__ = ["augmented"]


def augmented(model: Model, **augment_kwargs) -> Model:
    """`model` trained on augmented batches: `loss` and `manual_grad` transform x with `augment`
    (keyword arguments as there) using part of their `key`; `apply` is unchanged."""
    augment(jax.random.key(0), jnp.zeros((1, 1, 4, 4)), **augment_kwargs)  # bad settings fail now

    def split(key, fn):
        if key is None:
            raise ValueError(f"augmented {model.name}.{fn}: key is None, expected a jax.random "
                             f"key (augmentation is random)")
        return jax.random.split(key)

    def loss_(params, state, x, t, *, key=None):
        k_aug, k = split(key, "loss")
        return model.loss(params, state, augment(k_aug, x, **augment_kwargs), t, key=k)

    def manual_grad_(params, state, x, t, *, key=None):
        k_aug, k = split(key, "manual_grad")
        return model.manual_grad(params, state, augment(k_aug, x, **augment_kwargs), t, key=k)

    return Model(model.init, model.apply, loss_, manual_grad_, name=f"{model.name}+augment")
