"""corenn: tensors, reverse-mode autograd, layers, losses and optimizers on ``kernels``.

The public names below are the contract; see docs/architecture.md.
"""

from corenn import functional, init, optim
from corenn.autograd import Function, enable_grad, is_grad_enabled, no_grad
from corenn.backend import sort_rows
from corenn.gradcheck import GradcheckError, gradcheck
from corenn.io import ModelFileError, load, save
from corenn.layers.dense import Dense
from corenn.layers.embedding import Embedding
from corenn.layers.lstm import LSTM
from corenn.layers.module import Module, Sequential, StateDictError
from corenn.optim.clip import clip_grad_norm
from corenn.sparse import RowSparse
from corenn.tensor import Parameter, Tensor, tensor
from kernels import get_num_threads, set_num_threads
from kernels import on_compile as on_kernel_compile

F = functional

__all__ = [
    "Tensor",
    "Parameter",
    "tensor",
    "Function",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "Module",
    "Sequential",
    "StateDictError",
    "Dense",
    "Embedding",
    "LSTM",
    "RowSparse",
    "functional",
    "F",
    "optim",
    "init",
    "clip_grad_norm",
    "save",
    "load",
    "ModelFileError",
    "gradcheck",
    "GradcheckError",
    "set_num_threads",
    "get_num_threads",
    "on_kernel_compile",
    "sort_rows",
]
