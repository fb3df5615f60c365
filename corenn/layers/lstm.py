"""Multi-layer LSTM, batch first, with variable-length (right-padded) sequences.

Letters: B batch, T time steps, I input size, H hidden size, L layers.

Each layer is one autograd Function. Forward: the input projection of all steps is one GEMM
``X W_ih^T`` over (T B, I); each step adds the recurrent GEMM ``h_{t-1} W_hh^T`` (BLAS, into a
preallocated buffer) and one fused kernel (``lstm_cell_fwd``) applies the gates::

    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (x_t W_ih^T + h_{t-1} W_hh^T + b_ih + b_hh)
    c_t = f c_{t-1} + i g;   h_t = o tanh(c_t)

Backward runs the fused ``lstm_cell_bwd`` per step plus one GEMM ``dG_t W_hh`` for the
recurrence, then the weight gradients over all steps at once: ``dW_ih = dG^T X``,
``dW_hh = dG^T H_prev`` and ``db = sum dG``. Steps past a sequence's length carry the state
(``h_t = h_{t-1}``, ``c_t = c_{t-1}``), output 0 and pass no gradient to the parameters.
Internally the layer works time-major (T, B, .) so every per-step slice is contiguous.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import kernels
from corenn import init
from corenn.autograd import Function, is_grad_enabled
from corenn.backend import DEFAULT_DTYPE, check_float_dtype
from corenn.layers.module import Module
from corenn.ops.dropout import dropout
from corenn.ops.shape import stack
from corenn.tensor import Parameter, Tensor

__all__ = ["LSTM"]


class LSTMLayerFunction(Function):
    """One LSTM layer over a whole batch of sequences.

    Inputs: ``x`` (B, T, I), ``h0``, ``c0`` (B, H), ``w_ih`` (4H, I), ``w_hh`` (4H, H),
    ``b_ih``, ``b_hh`` (4H,); config ``lengths`` (B,) int64 with ``1 <= lengths <= T``.
    Outputs: ``y`` (B, T, H) (0 at padded steps), ``h_n``, ``c_n`` (B, H), the state at each
    sequence's last step.
    """

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, *, lengths):
        n, steps, _ = x.shape
        hidden = w_hh.shape[1]
        keep = is_grad_enabled() and any(self.needs_input_grad)
        xt = np.ascontiguousarray(x.transpose(1, 0, 2))
        xg = np.matmul(xt.reshape(steps * n, -1), w_ih.T).reshape(steps, n, 4 * hidden)
        bias = b_ih + b_hh
        kept = steps if keep else 1  # without backward, one reusable slot per buffer
        acts = np.empty((kept, n, 4 * hidden), dtype=x.dtype)
        tanh_c = np.empty((kept, n, hidden), dtype=x.dtype)
        hs = np.empty((kept + 1, n, hidden), dtype=x.dtype)
        cs = np.empty((kept + 1, n, hidden), dtype=x.dtype)
        hs[0], cs[0] = h0, c0
        y = np.empty((n, steps, hidden), dtype=x.dtype)
        cell = kernels.get("lstm_cell_fwd", x)
        w_hh_t = w_hh.T
        for t in range(steps):
            a, s = (t, t) if keep else (0, t % 2)
            s1 = s + 1 if keep else 1 - s
            np.matmul(hs[s], w_hh_t, out=acts[a])
            cell(xg[t], acts[a], bias, cs[s], hs[s], lengths, t, cs[s1], hs[s1], tanh_c[a], y)
        last = steps if keep else steps % 2
        if keep:
            self.save_for_backward(xt, w_ih, w_hh, acts, tanh_c, hs, cs, lengths)
        return y, hs[last].copy(), cs[last].copy()

    def backward(self, gy, gh_n, gc_n):
        xt, w_ih, w_hh, acts, tanh_c, hs, cs, lengths = self.saved
        steps, n, four_h = acts.shape
        dgates = np.empty_like(acts)
        dc = np.array(gc_n, dtype=acts.dtype, copy=True)
        dh = np.zeros_like(dc)
        gy = np.ascontiguousarray(gy, dtype=acts.dtype)
        cell = kernels.get("lstm_cell_bwd", acts)
        for t in range(steps - 1, -1, -1):
            cell(acts[t], tanh_c[t], cs[t], gy, dh, gh_n, dc, lengths, t, dgates[t])
            np.matmul(dgates[t], w_hh, out=dh)
        flat = dgates.reshape(steps * n, four_h)
        need = self.needs_input_grad
        dx = None
        if need[0]:
            dx = np.matmul(flat, w_ih).reshape(steps, n, -1).transpose(1, 0, 2).copy()
        dw_ih = flat.T @ xt.reshape(steps * n, -1) if need[3] else None
        dw_hh = flat.T @ hs[:-1].reshape(steps * n, -1) if need[4] else None
        db = flat.sum(axis=0) if need[5] or need[6] else None
        return dx, dh, dc, dw_ih, dw_hh, db, db


class LSTM(Module):
    """Long short-term memory, batch first, parameters laid out as PyTorch's ``nn.LSTM``.

    Parameters
    ----------
    input_size, hidden_size : int
        I and H.
    num_layers : int
        Stacked layers L; layer ``k > 0`` reads the output of layer ``k - 1``.
    dropout : float
        Dropout probability on the outputs of every layer but the last, in training mode only.
    dtype : float32 or float64
    rng : numpy.random.Generator, optional
        Source of the initial weights and of the dropout masks.
    forget_bias : float
        If nonzero, the forget-gate block of ``bias_ih_l{k}`` starts at this value and that of
        ``bias_hh_l{k}`` at 0 (total forget bias ``forget_bias``); 0 keeps PyTorch's init.
    recurrent_init : {"uniform", "orthogonal"}
        ``"uniform"`` (PyTorch's default): every weight and bias ``U(-1/sqrt(H), 1/sqrt(H))``;
        ``"orthogonal"``: each (H, H) gate block of ``weight_hh_l{k}`` orthogonal.

    Attributes
    ----------
    weight_ih_l{k} : Parameter, shape (4H, I) for k = 0, (4H, H) otherwise
    weight_hh_l{k} : Parameter, shape (4H, H)
    bias_ih_l{k}, bias_hh_l{k} : Parameter, shape (4H,)
        Gate blocks in the order (i, f, g, o); names, shapes and order match ``nn.LSTM``, so
        state dicts port both ways.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        dtype: Any = DEFAULT_DTYPE,
        rng: np.random.Generator | None = None,
        forget_bias: float = 0.0,
        recurrent_init: str = "uniform",
    ):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"LSTM {name} must be a positive integer, got {value}")
        if int(num_layers) != num_layers or num_layers < 1:
            raise ValueError(f"LSTM num_layers must be a positive integer, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LSTM dropout must be in [0, 1), got {dropout}")
        if recurrent_init not in ("uniform", "orthogonal"):
            raise ValueError(
                f"LSTM recurrent_init must be 'uniform' or 'orthogonal', got {recurrent_init!r}"
            )
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.dropout = int(num_layers), float(dropout)
        self.dtype = check_float_dtype(dtype)
        self.rng = rng if rng is not None else np.random.default_rng()
        hidden = self.hidden_size
        bound = 1.0 / math.sqrt(hidden)
        for k in range(self.num_layers):
            fan_in = self.input_size if k == 0 else hidden
            w_ih = init.uniform((4 * hidden, fan_in), bound, self.rng, self.dtype)
            if recurrent_init == "orthogonal":
                blocks = [
                    init.orthogonal((hidden, hidden), self.rng, self.dtype) for _ in range(4)
                ]
                w_hh = np.concatenate(blocks, axis=0)
            else:
                w_hh = init.uniform((4 * hidden, hidden), bound, self.rng, self.dtype)
            b_ih = init.uniform(4 * hidden, bound, self.rng, self.dtype)
            b_hh = init.uniform(4 * hidden, bound, self.rng, self.dtype)
            if forget_bias:
                b_ih[hidden : 2 * hidden] = forget_bias
                b_hh[hidden : 2 * hidden] = 0
            setattr(self, f"weight_ih_l{k}", Parameter(w_ih))
            setattr(self, f"weight_hh_l{k}", Parameter(w_hh))
            setattr(self, f"bias_ih_l{k}", Parameter(b_ih))
            setattr(self, f"bias_hh_l{k}", Parameter(b_hh))

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"dropout={self.dropout}, dtype={self.dtype}"
        )

    def _layer_params(self, k: int) -> tuple[Parameter, ...]:
        return tuple(
            getattr(self, f"{name}_l{k}")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )

    def forward(
        self,
        x: Any,
        lengths: Any = None,
        mask: Any = None,
        state: tuple[Any, Any] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the LSTM over right-padded sequences.

        Parameters
        ----------
        x : Tensor or ndarray, shape (B, T, I), the layer's dtype
        lengths : array_like of int, shape (B,), optional
            Sequence lengths, each in [1, T]; steps at and after ``lengths[b]`` are padding.
        mask : array_like of bool, shape (B, T), optional
            True on real steps; each row must be True on a prefix (right padding). Give at most
            one of ``lengths`` and ``mask``; with neither, every sequence has length T.
        state : (h0, c0), optional
            Initial state, each (L, B, H); zeros by default.

        Returns
        -------
        output : Tensor, shape (B, T, H)
            Last layer's hidden state at each step, 0 at padded steps.
        (h_n, c_n) : Tensors, each (L, B, H)
            Every layer's state at each sequence's own last step.

        Raises
        ------
        ValueError
            On a shape that does not fit (naming the layer and both shapes), a length outside
            [1, T], a mask that is not right-padded, or both ``lengths`` and ``mask``.
        TypeError
            On a dtype other than the layer's.
        """
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"LSTM({self.extra_repr()}): input of shape {x.shape} does not match the expected "
                f"(B, T, {self.input_size})"
            )
        self._check_dtype("input", x)
        n, steps, _ = x.shape
        lens = self._lengths(lengths, mask, n, steps)
        h0, c0 = self._initial_state(state, n)
        ys, hs, cs = x, [], []
        for k in range(self.num_layers):
            if k > 0:
                ys = dropout(ys, self.dropout, self.training, self.rng)
            ys, h_k, c_k = LSTMLayerFunction.apply(
                ys, h0[k], c0[k], *self._layer_params(k), lengths=lens
            )
            hs.append(h_k)
            cs.append(c_k)
        return ys, (stack(hs), stack(cs))

    def _check_dtype(self, what: str, t: Tensor) -> None:
        if t.dtype != self.dtype:
            raise TypeError(f"LSTM {what} has dtype {t.dtype}, but the layer is {self.dtype}")

    def _lengths(self, lengths: Any, mask: Any, n: int, steps: int) -> np.ndarray:
        if steps == 0:
            raise ValueError("LSTM input has no time steps (T = 0)")
        if lengths is not None and mask is not None:
            raise ValueError("give LSTM either lengths or mask, not both")
        if mask is not None:
            mask = np.asarray(getattr(mask, "data", mask))
            if mask.dtype != bool or mask.shape != (n, steps):
                raise ValueError(
                    f"LSTM mask must be boolean of shape (B, T) = {(n, steps)}, got "
                    f"{mask.dtype} {mask.shape}"
                )
            lens = mask.sum(axis=1).astype(np.int64)
            bad = np.flatnonzero((mask != (np.arange(steps) < lens[:, None])).any(axis=1))
            if bad.size:
                raise ValueError(f"LSTM mask row {bad[0]} is not right-padded (True, then False)")
        elif lengths is None:
            return np.full(n, steps, dtype=np.int64)
        else:
            raw = np.asarray(getattr(lengths, "data", lengths))
            if raw.shape != (n,) or (raw.size and raw.dtype.kind not in "iu"):
                raise ValueError(
                    f"LSTM lengths must be integers of shape (B,) = ({n},), got {raw.dtype} "
                    f"{raw.shape}"
                )
            lens = raw.astype(np.int64)
        bad = np.flatnonzero((lens < 1) | (lens > steps))
        if bad.size:
            b = int(bad[0])
            raise ValueError(
                f"LSTM length {int(lens[b])} of sequence {b} is outside [1, T={steps}]"
            )
        return lens

    def _initial_state(self, state: Any, n: int) -> tuple[Any, Any]:
        shape = (self.num_layers, n, self.hidden_size)
        if state is None:
            zeros = np.zeros(shape, dtype=self.dtype)
            return zeros, zeros
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError("LSTM state must be a pair (h0, c0)")
        out = []
        for name, s in zip(("h0", "c0"), state):
            s = s if isinstance(s, Tensor) else Tensor(s)
            if s.shape != shape:
                raise ValueError(
                    f"LSTM({self.extra_repr()}): {name} of shape {s.shape} does not match "
                    f"the expected (num_layers, B, H) = {shape}"
                )
            self._check_dtype(name, s)
            out.append(s)
        return out[0], out[1]
