"""Multi-layer LSTM, batch first, with variable-length (right-padded) sequences.

Letters: B batch, T time steps, I input size, H hidden size, L layers.

Each layer is one autograd Function whose forward and backward are one kernel call each
(``lstm_seq_fwd``, ``lstm_seq_bwd``: all T steps inside the kernel, no Python per step; on
several threads, one block of batch rows per thread). The float32 forward on AVX-512 CPUs fuses
the gate products with the cell per tile of rows and units (``kernels/cpu/_lstm_tiles.py``);
what follows describes the other path (float64, other CPUs) and the backward. Forward: the input
projection ``X W_ih^T`` is one GEMM per chunk of steps (a chunk's projections fit in about an
L2 cache, see :func:`_chunk_steps`); each step adds the recurrent GEMM ``h_{t-1} W_hh^T``
(BLAS) and one fused cell kernel applies the gates. When ``I + H`` is small (``_FUSE_MAX_K``)
the two GEMMs are one per step, ``[x_t, h_{t-1}] [W_ih, W_hh]^T``. The gates::

    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (x_t W_ih^T + h_{t-1} W_hh^T + b_ih + b_hh)
    c_t = f c_{t-1} + i g;   h_t = o tanh(c_t)

Backward runs the fused backward cell per step plus one GEMM ``dG_t W_hh`` for the recurrence
(``dG_t [W_ih, W_hh]`` when fused, which gives ``dx_t`` too); after each chunk of steps it adds
that chunk's share of the other gradients, ``dX = dG W_ih`` (unfused),
``[dW_ih, dW_hh] += dG^T [X, H_prev]`` (one GEMM) and ``db += sum dG``, while the chunk's ``dG``
is still in cache. Steps past a sequence's length carry the state (``h_t = h_{t-1}``,
``c_t = c_{t-1}``), output 0 and pass no gradient to the parameters.
Internally the layer works time-major (T, B, .) so every per-step slice is contiguous.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

import kernels
from corenn import init
from corenn.autograd import Function, is_grad_enabled
from corenn.backend import DEFAULT_DTYPE, check_float_dtype, get_array_module
from corenn.layers.module import Module
from corenn.ops.dropout import dropout
from corenn.ops.shape import stack
from corenn.tensor import Parameter, Tensor

__all__ = ["LSTM"]


_CHUNK_BYTES = 1 << 21
_FUSE_MAX_K = 192
"""At ``I + H`` up to this the layer is *fused*: the forward makes one GEMM per step,
``[x_t, h_{t-1}] [W_ih, W_hh]^T`` (K = I + H), instead of a per-chunk input projection plus a
recurrent GEMM, and the backward one GEMM per step, ``dG_t [W_ih, W_hh]``, for ``dx_t`` and
``dh_{t-1}`` together. With small K two GEMMs cost more than one. Measured at 1 thread (ms,
fused vs not), forward: (B, T, I, H) = (1024, 10, 16, 32) 1.84 vs 2.12, (512, 20, 32, 64)
5.14 vs 5.54, (256, 50, 64, 128) 20.1 vs 21.0, but (64, 200, 128, 256) 95.6 vs 84.0; backward
GEMMs: 2.03 vs 2.22, 7.38 vs 7.32, 35.7 vs 40.1, but 180 vs 146."""


def _fused(inputs: int, hidden: int) -> bool:
    return inputs + hidden <= _FUSE_MAX_K


def _chunk_steps(n: int, hidden: int, dtype: np.dtype, steps: int) -> int:
    """Steps whose input projections (4 B H each) fit in ``_CHUNK_BYTES`` (about an L2 cache).

    Projecting a chunk of steps at a time, rather than all T at once, keeps the projections in
    cache until the cell reads them instead of streaming a (T, B, 4H) array through memory.
    """
    per_step = 4 * n * hidden * np.dtype(dtype).itemsize
    return max(1, min(steps, _CHUNK_BYTES // max(per_step, 1)))


_SCRATCH = threading.local()
_SCRATCH_MAX = 16


def _scratch(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The calling thread's buffer ``name`` of ``shape`` and ``dtype``, reused from one
    inference call to the next (contents undefined on return).

    Inference needs one slot per buffer, dead when the layer returns; a fresh buffer each call
    costs a page fault per 4 KiB on first touch (glibc maps a new block for each allocation of
    the same large size): at (B, T, I, H) = (1024, 10, 16, 32) that was about a quarter of the
    forward. Keyed by name, shape and dtype; at most ``_SCRATCH_MAX`` buffers per thread.
    """
    cache = getattr(_SCRATCH, "buffers", None)
    if cache is None:
        cache = _SCRATCH.buffers = {}
    key = (name, shape, np.dtype(dtype))
    buf = cache.get(key)
    if buf is None:
        if len(cache) >= _SCRATCH_MAX:
            cache.clear()
        buf = cache[key] = np.empty(shape, dtype=dtype)
    return buf


def _line_aligned(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An empty C-contiguous array whose data starts on a 64-byte cache line (numpy only
    promises 16), so that a kernel can stream whole lines of it to memory."""
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    raw = np.empty(size * dtype.itemsize + 64, np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip : skip + size * dtype.itemsize].view(dtype).reshape(shape)


class LSTMLayerFunction(Function):
    """One LSTM layer over a whole batch of sequences.

    Inputs: ``x`` (B, T, I), ``h0``, ``c0`` (B, H), ``w_ih`` (4H, I), ``w_hh`` (4H, H),
    ``b_ih``, ``b_hh`` (4H,); config ``lengths`` (B,) int64 with ``1 <= lengths <= T``.
    Outputs: ``y`` (B, T, H) (0 at padded steps), ``h_n``, ``c_n`` (B, H), the state at each
    sequence's last step.
    """

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, *, lengths):
        n, steps, inputs = x.shape
        hidden = w_hh.shape[1]
        keep = is_grad_enabled() and any(self.needs_input_grad)
        kept = steps if keep else 1  # without backward, one reusable slot per buffer
        dtype = x.dtype
        xp = get_array_module(x)  # numpy, or cupy on a GPU (no reused or aligned buffers there)
        buffer = _scratch if not keep and xp is np else lambda _, shape, dt: xp.empty(shape, dt)
        acts = buffer("acts", (kept, n, 4 * hidden), dtype)
        tanh_c = buffer("tanh_c", (kept, n, hidden), dtype)
        hs = buffer("hs", (kept + 1, n, hidden), dtype)
        cs = buffer("cs", (kept + 1, n, hidden), dtype)
        hs[0], cs[0] = h0, c0
        xh = buffer("xh", (kept, n, inputs + hidden), dtype)  # [x_t, h_{t-1}]
        shape = (n, steps, hidden)  # y: on the CPU line-aligned, as the kernel may stream it
        y = _line_aligned(shape, dtype) if xp is np else xp.empty(shape, dtype)
        # Contiguous W^T: OpenBLAS runs (B, K) @ (K, 4H) faster than with a strided W^T.
        w_t = xp.ascontiguousarray(xp.concatenate([w_ih, w_hh], axis=1).T)
        kernels.get("lstm_seq_fwd", x)(
            xp.ascontiguousarray(x), w_t, b_ih + b_hh, lengths, _fused(inputs, hidden),
            _chunk_steps(n, hidden, dtype, steps), hs, cs, acts, tanh_c, xh, y,
        )  # fmt: skip
        last = steps if keep else steps % 2
        if keep:
            self.save_for_backward(xh, w_t, acts, tanh_c, cs, lengths)
        return y, hs[last].copy(), cs[last].copy()

    def backward(self, gy, gh_n, gc_n):
        xh, w_t, acts, tanh_c, cs, lengths = self.saved
        steps, n, four_h = acts.shape
        hidden = four_h // 4
        inputs = xh.shape[2] - hidden
        dtype = acts.dtype
        need = self.needs_input_grad
        xp = get_array_module(acts)
        dc = xp.array(gc_n, dtype=dtype, copy=True)
        dh = xp.zeros_like(dc)
        dx = xp.empty((n, steps, inputs), dtype=dtype) if need[0] else None
        need_w = any(need[3:])
        dw = xp.zeros((four_h, inputs + hidden), dtype=dtype) if need_w else None
        db = xp.zeros(four_h, dtype=dtype) if need_w else None
        kernels.get("lstm_seq_bwd", acts)(
            w_t, acts, tanh_c, cs, xh, lengths, xp.ascontiguousarray(gy, dtype=dtype),
            xp.ascontiguousarray(gh_n, dtype=dtype), dc, dh,
            dx is not None and _fused(inputs, hidden), _chunk_steps(n, hidden, dtype, steps),
            dx, dw, db,
        )  # fmt: skip
        dw_ih = xp.ascontiguousarray(dw[:, :inputs]) if need[3] else None
        dw_hh = xp.ascontiguousarray(dw[:, inputs:]) if need[4] else None
        return dx, dh, dc, dw_ih, dw_hh, db if need[5] else None, db if need[6] else None


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
        h0, c0 = self._initial_state(state, n, get_array_module(x))
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

    def _initial_state(self, state: Any, n: int, xp: Any = np) -> tuple[Any, Any]:
        shape = (self.num_layers, n, self.hidden_size)
        if state is None:
            zeros = xp.zeros(shape, dtype=self.dtype)
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
