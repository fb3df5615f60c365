"""The Tensor: an array, the gradient it receives, and the Function that produced it."""

from __future__ import annotations

from typing import Any

import numpy as np

from corenn import autograd
from corenn.backend import as_array, check_device, device_of, to_device


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    Parameters
    ----------
    data : array_like
        numpy (or cupy) array, list or scalar. Python floats and lists become float32; arrays keep
        their dtype unless ``dtype`` is given.
    requires_grad : bool
        Whether backpropagation computes ``.grad`` for this tensor (leaves only keep ``.grad``).
    dtype : dtype, optional
        Cast the data to this dtype.

    Attributes
    ----------
    data : ndarray
    grad : ndarray or RowSparse or None
        Accumulated gradient (leaf tensors), same shape as ``data``.
    """

    __array_priority__ = 1000

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = as_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require grad, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad: Any = None
        self.creator: autograd.Function | None = None
        self.output_index = 0

    @staticmethod
    def _constant(value: Any, peers: tuple[Any, ...]) -> Tensor:
        """Wrap a non-Tensor operand on the peers' device; Python scalars take a peer's dtype."""
        from corenn.backend import get_array_module

        xp = get_array_module(*peers)
        if isinstance(value, (int, float, bool)) and not isinstance(value, np.generic):
            for p in peers:
                if isinstance(p, Tensor) and p.dtype.kind == "f":
                    return Tensor(xp.asarray(value, dtype=p.dtype))
        return Tensor(xp.asarray(value))

    # -- properties -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def device(self) -> str:
        """``"cpu"`` (numpy data) or ``"gpu"`` (cupy data)."""
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{grad})"

    # -- autograd ---------------------------------------------------------------------------
    def backward(self, grad: Any = None) -> None:
        """Accumulate d(self)/d(leaf) into each leaf's ``.grad`` (:func:`autograd.backward`)."""
        autograd.backward(self, grad)

    def detach(self) -> Tensor:
        """A tensor sharing the data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    def to(self, device: str) -> Tensor:
        """This tensor on ``device`` (``"cpu"`` or ``"gpu"``): itself when already there, else a
        new leaf of the same class holding a copy, with the same ``requires_grad``.

        Gradient history does not cross devices: move leaves (inputs, parameters through
        :meth:`corenn.Module.to`) before building a graph; later ops run on the data's device.

        Raises
        ------
        ValueError
            On a device name other than ``"cpu"`` and ``"gpu"``.
        GPUUnavailableError
            For ``"gpu"`` without cupy or a CUDA device (the message says which).
        """
        if device_of(self.data) == check_device(device):
            return self
        return type(self)(to_device(self.data, device), requires_grad=self.requires_grad)

    def numpy(self) -> np.ndarray:
        """The data as a numpy array (copied from the GPU when needed)."""
        return self.data.get() if hasattr(self.data, "get") else self.data

    def item(self) -> Any:
        return self.data.item()

    def astype(self, dtype: Any) -> Tensor:
        from corenn.ops import basic

        return basic.Cast.apply(self, dtype=np.dtype(dtype))

    # -- operators --------------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        from corenn.ops.basic import add

        return add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        from corenn.ops.basic import add

        return add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        from corenn.ops.basic import sub

        return sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        from corenn.ops.basic import sub

        return sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        from corenn.ops.basic import mul

        return mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        from corenn.ops.basic import mul

        return mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        from corenn.ops.basic import div

        return div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        from corenn.ops.basic import div

        return div(other, self)

    def __neg__(self) -> Tensor:
        from corenn.ops.basic import neg

        return neg(self)

    def __pow__(self, exponent: float) -> Tensor:
        from corenn.ops.basic import pow

        return pow(self, exponent)

    def __matmul__(self, other: Any) -> Tensor:
        from corenn.ops.basic import matmul

        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        from corenn.ops.basic import matmul

        return matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        from corenn.ops.basic import getitem

        return getitem(self, index)

    # Comparisons give plain boolean tensors (no gradient).
    def __lt__(self, other: Any) -> Tensor:
        return Tensor(self.data < getattr(other, "data", other))

    def __le__(self, other: Any) -> Tensor:
        return Tensor(self.data <= getattr(other, "data", other))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor(self.data > getattr(other, "data", other))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor(self.data >= getattr(other, "data", other))

    # -- methods ----------------------------------------------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        from corenn.ops.basic import sum

        return sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        from corenn.ops.basic import mean

        return mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        from corenn.ops.basic import max

        return max(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        from corenn.ops.basic import reshape

        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def transpose(self, *axes: Any) -> Tensor:
        from corenn.ops.basic import transpose

        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return transpose(self, axes or None)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def gather(self, dim: int, index: Any) -> Tensor:
        from corenn.ops.basic import gather

        return gather(self, dim, index)

    def exp(self) -> Tensor:
        from corenn.ops.basic import exp

        return exp(self)

    def log(self) -> Tensor:
        from corenn.ops.basic import log

        return log(self)


class Parameter(Tensor):
    """A Tensor that a :class:`~corenn.Module` registers as trainable (requires grad)."""

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Create a Tensor (PyTorch-style factory)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)
