"""corenn: tensors, reverse-mode autograd, layers, losses and optimizers on ``kernels``.

The public names below are the contract; see docs/corenn.md.
"""

from kernels import get_num_threads, set_num_threads

from corenn.autograd import enable_grad, is_grad_enabled, no_grad
from corenn.gradcheck import GradcheckError, gradcheck
from corenn.layers.module import Module, Sequential, StateDictError
from corenn.sparse import RowSparse
from corenn.tensor import Parameter, Tensor, tensor

# Public names defined in modules that import corenn's core themselves; resolved on first use.
_LAZY = {
    "Dense": "corenn.layers.dense",
    "Embedding": "corenn.layers.embedding",
    "LSTM": "corenn.layers.lstm",
    "functional": "corenn",
    "F": "corenn",
    "optim": "corenn",
    "init": "corenn",
    "clip_grad_norm": "corenn.optim.clip",
    "save": "corenn.io",
    "load": "corenn.io",
}


def __getattr__(name):
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'corenn' has no attribute {name!r}")
    if name in ("functional", "F"):
        return importlib.import_module("corenn.functional")
    if name in ("optim", "init"):
        return importlib.import_module(f"corenn.{name}")
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    *_LAZY,
    "Tensor",
    "Parameter",
    "tensor",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "Module",
    "Sequential",
    "StateDictError",
    "RowSparse",
    "gradcheck",
    "GradcheckError",
    "set_num_threads",
    "get_num_threads",
]
