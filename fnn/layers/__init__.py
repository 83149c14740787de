"""Layers: the book's Layer classes as pure forward/backward pairs (see `fnn.layers.core`)."""

from fnn.layers.core import (
    ACTIVATION_LAYERS,
    Layer,
    activation_layer,
    add,
    affine,
    identity,
    mul,
    relu,
    sigmoid,
    softmax_with_loss,
    tanh,
)

__all__ = ["ACTIVATION_LAYERS", "Layer", "activation_layer", "add", "affine", "identity", "mul",
           "relu", "sigmoid", "softmax_with_loss", "tanh"]
