"""Layers: the book's Layer classes as pure forward/backward pairs (see `fnn.layers.core`)."""

from fnn.layers import attention, conv, im2col, pooling, recurrent, time
from fnn.layers.attention import attention_weight, time_attention, weight_sum
from fnn.layers.conv import conv2d, conv2d_nhwc, convolution, convolution_nhwc
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
from fnn.layers.pooling import pool2d, pool2d_nhwc, pooling_nhwc
from fnn.layers.recurrent import gru_cell, lstm_cell, rnn_cell, time_gru, time_layer, time_lstm, time_rnn
from fnn.layers.time import time_affine, time_dropout, time_embedding, time_softmax_with_loss

__all__ = ["ACTIVATION_LAYERS", "Layer", "activation_layer", "add", "affine", "identity", "mul",
           "relu", "sigmoid", "softmax_with_loss", "tanh", "conv", "im2col", "pooling", "conv2d",
           "conv2d_nhwc", "convolution", "convolution_nhwc", "pool2d", "pool2d_nhwc",
           "pooling_nhwc", "recurrent", "time", "rnn_cell", "lstm_cell",
           "gru_cell", "time_rnn", "time_lstm", "time_gru", "time_layer", "time_embedding", "time_affine",
           "time_softmax_with_loss", "time_dropout", "attention", "attention_weight",
           "weight_sum", "time_attention"]
