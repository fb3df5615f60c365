"""The functional namespace (``corenn.functional``, also ``corenn.F``): every op in one place.

Basic ops (:mod:`corenn.ops.basic`), activations (:mod:`corenn.ops.activations`), joining
(:mod:`corenn.ops.shape`), dropout (:mod:`corenn.ops.dropout`), row lookups (``embedding``,
``take_rows``: :mod:`corenn.ops.embedding`) and losses (:mod:`corenn.ops.losses`). Each function
takes Tensors (or arrays) and returns a Tensor; see the defining module for shapes and
conventions.

Note that ``sum`` and ``max`` shadow Python's built-ins when imported with ``*``.
"""

from corenn.ops.activations import log_softmax, relu, sigmoid, softmax, tanh
from corenn.ops.bag import embedding_bag
from corenn.ops.basic import exp, gather, log, matmul, max, mean, reshape, sum, transpose
from corenn.ops.dropout import dropout
from corenn.ops.embedding import embedding, take_rows
from corenn.ops.losses import (
    LossInputError,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    pinball_loss,
)
from corenn.ops.shape import concat, stack

__all__ = [
    "matmul",
    "exp",
    "log",
    "sum",
    "mean",
    "max",
    "reshape",
    "transpose",
    "gather",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "concat",
    "stack",
    "dropout",
    "embedding",
    "take_rows",
    "embedding_bag",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "mse_loss",
    "pinball_loss",
    "LossInputError",
]
