"""Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay."""

from __future__ import annotations

from typing import Any

from corenn.backend import get_array_module
from corenn.optim.optimizer import Optimizer, ParamsArg, require_number
from corenn.sparse import RowSparse
from corenn.tensor import Tensor


class SGD(Optimizer):
    r"""Stochastic gradient descent, computed as ``torch.optim.SGD`` computes it.

    For gradient :math:`g`, momentum :math:`\mu`, dampening :math:`\tau`, weight decay
    :math:`\lambda` and learning rate :math:`\eta`:

    .. math::

        g &\leftarrow g + \lambda p \\
        b &\leftarrow g \text{ (first step)}, \quad
            b \leftarrow \mu b + (1 - \tau) g \text{ (later steps)} \\
        g &\leftarrow g + \mu b \text{ (Nesterov)}, \quad g \leftarrow b \text{ (otherwise)} \\
        p &\leftarrow p - \eta g

    (the momentum lines only when :math:`\mu \neq 0`).

    Row-sparse gradients (:class:`~corenn.RowSparse`, e.g. from an embedding) update only the
    touched rows, lazily: weight decay and momentum apply to those rows alone, and the momentum
    buffer of an untouched row neither decays nor moves its row. The buffer is a dense array,
    zero-initialised; on the parameter's first step the touched rows take ``g`` (as above), and a
    row first touched later starts from a zero buffer (``b = (1 - tau) g``). With every row touched
    at every step this is exactly the dense update.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters, or parameter groups (see :class:`Optimizer`).
    lr : float
        Learning rate, >= 0.
    momentum : float
        Momentum factor, >= 0.
    dampening : float
        Dampening of the momentum.
    weight_decay : float
        L2 penalty, >= 0.
    nesterov : bool
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    """

    def __init__(
        self,
        params: ParamsArg,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=bool(nesterov),
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        require_number("momentum", group["momentum"], lambda x: x >= 0, ">= 0")
        require_number("dampening", group["dampening"], lambda x: True, "a number")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "Nesterov momentum needs momentum > 0 and dampening == 0; got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _state_keys(self, group: dict[str, Any]) -> set[str]:
        return {"momentum_buffer"} if group["momentum"] != 0 else set()

    def _update(self, p: Tensor, grad: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        # One code path for dense and row-sparse gradients: ``rows`` selects what is updated.
        rows, g = (grad.indices, grad.values) if isinstance(grad, RowSparse) else (Ellipsis, grad)
        data = p.data
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        if wd != 0:
            g = g + wd * data[rows]
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = get_array_module(data).zeros_like(data)
                buf[rows] = g
            else:
                buf[rows] = buf[rows] * mu + (1 - group["dampening"]) * g
            g = g + mu * buf[rows] if group["nesterov"] else buf[rows]
        data[rows] -= lr * g
