"""Adam (Kingma & Ba) and AdamW (Loshchilov & Hutter): one implementation, a decoupled flag.

The update itself is the fused kernel ``adam_step`` (dense gradients) or ``adam_step_rows``
(row-sparse gradients) of :mod:`kernels`; see :mod:`kernels.reference.adam` for the equations.
"""

from __future__ import annotations

from typing import Any

import kernels
from corenn.backend import get_array_module
from corenn.optim.optimizer import Optimizer, ParamsArg, require_number
from corenn.sparse import RowSparse
from corenn.tensor import Tensor


class Adam(Optimizer):
    r"""Adam with bias correction, computed as ``torch.optim.Adam`` computes it.

    At step :math:`t` of a parameter (counted per parameter), with gradient :math:`g`:

    .. math::

        g &\leftarrow g + \lambda p \quad \text{(L2 weight decay; AdamW instead scales }
            p \leftarrow (1 - \eta\lambda) p \text{ first)} \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat m &= m / (1 - \beta_1^t), \qquad \hat v = v / (1 - \beta_2^t) \\
        p &\leftarrow p - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)

    evaluated as ``p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``. With
    ``amsgrad`` the running maximum of :math:`v` replaces :math:`v` in the denominator.

    Row-sparse gradients (:class:`~corenn.RowSparse`, e.g. from an embedding) update lazily, as
    ``torch.optim.SparseAdam`` does: only the touched rows of the parameter and of its moments
    change, with the parameter's step count for the bias correction. Dense Adam would also decay
    the moments of untouched rows and keep moving them, so the two differ on untouched rows; they
    agree when every row is touched at every step, and on the touched rows after one step. Weight
    decay (L2 or decoupled) applies to the touched rows only. (SparseAdam itself adds ``eps``
    before undoing the bias of ``v``; the update here is the dense one, row by row.)

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters, or parameter groups (see :class:`Optimizer`).
    lr : float
        Learning rate :math:`\eta`, >= 0.
    betas : tuple of float
        :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float
        :math:`\epsilon`, >= 0.
    weight_decay : float
        :math:`\lambda`, >= 0: L2 penalty added to the gradient (Adam) or decoupled decay (AdamW).
    amsgrad : bool
        Use the running maximum of the second moment.
    """

    decoupled = False

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=bool(amsgrad)
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        require_number("eps", group["eps"], lambda x: x >= 0, ">= 0")
        betas = group["betas"]
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            require_number(f"beta{i + 1}", beta, lambda x: 0 <= x < 1, "in [0, 1)")

    def _state_keys(self, group: dict[str, Any]) -> set[str]:
        keys = {"step", "exp_avg", "exp_avg_sq"}
        return keys | {"max_exp_avg_sq"} if group["amsgrad"] else keys

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = get_array_module(p.data)
        if not p.data.flags.c_contiguous:  # the kernels update flat views in place
            p.data = xp.ascontiguousarray(p.data)
        data, amsgrad = p.data, group["amsgrad"]
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(data), exp_avg_sq=xp.zeros_like(data))
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = xp.zeros_like(data)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        args = (state["step"], group["lr"], beta1, beta2, group["eps"], group["weight_decay"])
        args += (self.decoupled, amsgrad)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if isinstance(grad, RowSparse):
            vmax = state["max_exp_avg_sq"] if amsgrad else xp.empty((0, 0), data.dtype)
            step_rows = kernels.get("adam_step_rows", data)
            step_rows(data, grad.indices, xp.ascontiguousarray(grad.values), m, v, vmax, *args)
        else:
            vmax = state["max_exp_avg_sq"] if amsgrad else xp.empty(0, data.dtype)
            flat = [a.reshape(-1) for a in (data, xp.ascontiguousarray(grad), m, v, vmax)]
            kernels.get("adam_step", data)(*flat, *args)


class AdamW(Adam):
    r"""Adam with decoupled weight decay: ``p <- (1 - lr * weight_decay) p`` before the step.

    Same parameters and row-sparse semantics as :class:`Adam`; ``weight_decay`` defaults to
    ``1e-2``.
    """

    decoupled = True

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
