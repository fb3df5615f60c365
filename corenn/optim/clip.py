"""Gradient clipping by the total norm of all gradients, as ``torch.nn.utils.clip_grad_norm_``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

import kernels
from corenn.optim.optimizer import coalesced
from corenn.sparse import RowSparse
from corenn.tensor import Tensor


def clip_grad_norm(
    parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0
) -> float:
    r"""Scale the gradients so that their total norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradient elements taken together,
    :math:`N = (\sum_i \|g_i\|_q^q)^{1/q}` (the largest absolute element for ``inf``). When
    :math:`c = \mathrm{max\_norm} / (N + 10^{-6}) < 1`, every gradient is replaced by
    :math:`c\,g_i` (a new array: gradients may be shared between parameters, so none is changed in
    place); a NaN or infinite norm makes every gradient NaN, as in PyTorch. Parameters whose
    ``.grad`` is None are skipped.

    Row-sparse gradients (:class:`~corenn.RowSparse`) count their coalesced rows (repeated indices
    summed first) and are replaced by a scaled, coalesced RowSparse.

    Parameters
    ----------
    parameters : Tensor or iterable of Tensor
    max_norm : float
        Largest allowed total norm, >= 0.
    norm_type : float
        The order :math:`q` of the norm, > 0, or ``inf``.

    Returns
    -------
    float
        The total norm :math:`N` before clipping (accumulated in float64).

    Raises
    ------
    ValueError
        If ``max_norm`` is negative or ``norm_type`` is not positive.
    """
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    max_norm, q = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    if not q > 0:
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type}")
    grads = [(p, _coalesced(p.grad)) for p in params if p.grad is not None]
    if not grads:
        return 0.0
    arrays = [g.values if isinstance(g, RowSparse) else g for _, g in grads]
    if q == 2.0:
        total = math.sqrt(sum(kernels.get("sum_squares", a)(a) for a in arrays))
    elif math.isinf(q):
        total = max((float(abs(a).max()) if a.size else 0.0) for a in arrays)
    else:
        total = sum(float((abs(a.astype(np.float64)) ** q).sum()) for a in arrays) ** (1.0 / q)
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # NaN scales too, as in PyTorch
        for p, g in grads:
            if isinstance(g, RowSparse):
                p.grad = RowSparse(g.indices, g.values * g.dtype.type(coef), g.shape)
            else:
                p.grad = g * g.dtype.type(coef)
    return total


def _coalesced(grad: Any) -> Any:
    if isinstance(grad, RowSparse):
        return coalesced(grad)
    return grad.data if isinstance(grad, Tensor) else grad
