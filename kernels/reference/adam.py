r"""Reference Adam / AdamW update, in place: the specification the Numba twins must match.

Letters: P number of parameter elements (dense update), V rows of a table, D its width, R number
of touched rows (sparse update).

For step :math:`t` (1-based, counted per parameter), gradient :math:`g`, learning rate
:math:`\eta` and weight decay :math:`\lambda`:

.. math::

    p &\leftarrow \delta\, p, \qquad g \leftarrow g + \ell\, p
        \qquad (\text{Adam: } \delta = 1, \ell = \lambda; \
        \text{AdamW: } \delta = 1 - \eta\lambda, \ell = 0) \\
    m &\leftarrow m + (1 - \beta_1)(g - m) = \beta_1 m + (1 - \beta_1) g \\
    v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
    u &\leftarrow \max(u, v) \text{ (AMSGrad, } u \text{ kept in vmax) else } u = v \\
    p &\leftarrow p - \frac{\eta}{1 - \beta_1^t} \cdot
        \frac{m}{\sqrt{u} / \sqrt{1 - \beta_2^t} + \epsilon}

which is Kingma & Ba's ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``
and ``v_hat = v / (1 - b2^t)``, written as PyTorch evaluates it. Multiplying by
:math:`\delta = 1` and adding :math:`0 \cdot p` are exact for finite :math:`p`, so one formula
serves both variants. The scalar coefficients are computed in float64 and rounded once to the
parameter dtype; all element arithmetic then runs in that dtype (float32 or float64), in the
order above.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["adam_step", "adam_step_rows"]


def adam_coefficients(
    dtype: np.dtype,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
) -> np.ndarray:
    """The scalars of one Adam step, computed in float64 and rounded once to ``dtype``.

    Shared by the reference and the Numba twins (not a kernel itself).

    Returns
    -------
    ndarray, shape (8,), ``dtype``
        ``[lr / (1 - b1^t), sqrt(1 - b2^t), 1 - b1, b2, 1 - b2, eps, l2, decay]`` where
        ``l2 = weight_decay, decay = 1`` for Adam and ``l2 = 0, decay = 1 - lr * weight_decay``
        for AdamW.
    """
    step_size = lr / (1.0 - beta1**step)
    bc2_sqrt = math.sqrt(1.0 - beta2**step)
    l2 = 0.0 if decoupled else weight_decay
    decay = 1.0 - lr * weight_decay if decoupled else 1.0
    return np.array(
        [step_size, bc2_sqrt, 1.0 - beta1, beta2, 1.0 - beta2, eps, l2, decay], dtype=dtype
    )


def adam_step(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    vmax: np.ndarray,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    amsgrad: bool,
) -> None:
    """One dense Adam (``decoupled=False``) or AdamW (``decoupled=True``) step, in place.

    Parameters
    ----------
    p, g, m, v : ndarray, shape (P,), float32 or float64 (one dtype)
        Parameter, gradient, first and second moments; ``p``, ``m``, ``v`` are updated in place.
    vmax : ndarray, shape (P,) if ``amsgrad`` else any 1-D (unused), same dtype
        Running maximum of ``v`` (AMSGrad), updated in place.
    step : int
        Step number ``t`` of this update, >= 1.
    lr, beta1, beta2, eps, weight_decay : float
    decoupled, amsgrad : bool
    """
    step_size, bc2_sqrt, one_m_b1, b2, one_m_b2, eps_, l2, decay = adam_coefficients(
        p.dtype, step, lr, beta1, beta2, eps, weight_decay, decoupled
    )
    p *= decay
    g = g + l2 * p
    m += one_m_b1 * (g - m)
    v[...] = b2 * v + one_m_b2 * (g * g)
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
    denom = np.sqrt(vmax if amsgrad else v) / bc2_sqrt + eps_
    p -= step_size * m / denom


def adam_step_rows(
    p: np.ndarray,
    rows: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    vmax: np.ndarray,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    amsgrad: bool,
) -> None:
    """:func:`adam_step` on the rows ``rows`` of a table only (lazy sparse Adam), in place.

    Parameters
    ----------
    p, m, v : ndarray, shape (V, D), float32 or float64 (one dtype)
    rows : ndarray, shape (R,), int64
        Touched rows, strictly increasing (coalesced), each in ``[0, V)``.
    g : ndarray, shape (R, D)
        Gradient of the touched rows.
    vmax : ndarray, shape (V, D) if ``amsgrad`` else any 2-D (unused)
    step, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad
        As in :func:`adam_step`.

    Raises
    ------
    ValueError
        If ``rows`` is not strictly increasing or lies outside ``[0, V)``.
    """
    check_rows(rows, p.shape[0])
    pr, mr, vr = p[rows], m[rows], v[rows]
    vmr = vmax[rows] if amsgrad else vmax
    args = (step, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad)
    adam_step(
        pr.reshape(-1), g.reshape(-1), mr.reshape(-1), vr.reshape(-1), vmr.reshape(-1), *args
    )
    p[rows], m[rows], v[rows] = pr, mr, vr
    if amsgrad:
        vmax[rows] = vmr


def check_rows(rows: np.ndarray, n_rows: int) -> None:
    """Raise ValueError unless ``rows`` is strictly increasing and within ``[0, n_rows)``."""
    if rows.size and (np.any(np.diff(rows) <= 0) or rows[0] < 0 or rows[-1] >= n_rows):
        raise ValueError(
            f"rows must be strictly increasing (coalesced) and in [0, {n_rows}), got {rows}"
        )
