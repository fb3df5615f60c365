"""LSTM: Numba kernels against the reference, gradient checks, masking, errors, torch oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corenn
import kernels
import kernels.cpu.lstm as cpu
import kernels.reference.lstm as ref
from corenn import LSTM, Tensor
from corenn.layers import lstm as lstm_layer

TOL = {np.float32: 2e-6, np.float64: 1e-12}


def _assert_close(name, got, want, atol):
    err = np.max(np.abs(got - want), initial=0.0)
    assert err <= atol, f"{name}: max |got - want| = {err:.3g} > {atol:.1g}"


@st.composite
def cell_case(draw):
    n, hidden, steps = draw(st.integers(0, 5)), draw(st.integers(1, 9)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    lengths = np.array(draw(st.lists(st.integers(1, steps), min_size=n, max_size=n)), np.int64)
    return n, hidden, steps, draw(st.integers(0, steps - 1)), lengths, dtype, draw(st.integers())


@given(cell_case())
def test_cell_kernels_match_reference(case):
    n, hidden, steps, t, lengths, dtype, seed = case
    r = np.random.default_rng(abs(seed))

    def arr(*shape, scale=3.0):
        return (scale * r.standard_normal(shape)).astype(dtype)

    xg, hg, bias = arr(n, 4 * hidden), arr(n, 4 * hidden), arr(4 * hidden)
    c_prev, h_prev = arr(n, hidden), arr(n, hidden)
    results = []
    for impl in (cpu, ref):
        outs = [hg.copy(), *(np.empty((n, hidden), dtype) for _ in range(3))]
        y = np.full((n, steps, hidden), 7, dtype)
        impl.lstm_cell_fwd(xg, outs[0], bias, c_prev, h_prev, lengths, t, *outs[1:], y)
        results.append([*outs, y])
    for name, got, want in zip(("act", "c", "h", "tanh_c", "y"), *results):
        _assert_close(f"lstm_cell_fwd {name}", got, want, TOL[dtype])
    act, tanh_c = results[1][0], results[1][3]
    dy, dh_rec, dh_n, dc = arr(n, steps, hidden), arr(n, hidden), arr(n, hidden), arr(n, hidden)
    grads = []
    for impl in (cpu, ref):
        dgates, dc_io = np.empty((n, 4 * hidden), dtype), dc.copy()
        impl.lstm_cell_bwd(act, tanh_c, c_prev, dy, dh_rec, dh_n, dc_io, lengths, t, dgates)
        grads.append((dgates, dc_io))
    for name, got, want in zip(("dgates", "dc"), *grads):
        _assert_close(f"lstm_cell_bwd {name}", got, want, 10 * TOL[dtype])


def test_float32_gates_are_accurate_over_their_range():
    x = np.linspace(-12, 12, 200_001, dtype=np.float32)
    n = x.size
    xg = np.zeros((1, 4 * n), np.float32)
    xg[0, :n] = x  # the i gate is sigmoid of its preactivation
    xg[0, 2 * n : 3 * n] = x  # the g gate is tanh of its preactivation
    hg, state = np.zeros_like(xg), [np.zeros((1, n), np.float32) for _ in range(5)]
    y = np.empty((1, 1, n), np.float32)
    cpu.lstm_cell_fwd(xg, hg, xg[0] * 0, *state[:2], np.ones(1, np.int64), 0, *state[2:], y)
    x64 = x.astype(np.float64)
    for name, got, want, bound in (
        ("tanh", hg[0, 2 * n : 3 * n], np.tanh(x64), 3e-7),
        ("sigmoid", hg[0, :n], 1 / (1 + np.exp(-x64)), 1.5e-7),
    ):
        err = np.max(np.abs(got - want))
        assert err < bound, f"float32 {name}: max abs error {err:.3g} over [-12, 12]"


@pytest.mark.parametrize("blocks", [1, 2, 3])
@pytest.mark.parametrize("fused", [True, False])
def test_layer_kernels_match_the_reference_for_any_row_blocks(blocks, fused, rng, monkeypatch):
    """The Numba layer kernels, run on 1-3 row blocks (threads), equal the reference layer:
    outputs, saved buffers, state gradients and the block-summed weight gradients."""
    monkeypatch.setattr(cpu, "_blocks", lambda n: blocks)
    n, steps, inputs, hidden, chunk = 7, 5, 3, 4, 2
    lengths = np.array([5, 1, 2, 5, 4, 1, 3], np.int64)
    x = rng.standard_normal((n, steps, inputs))
    w_t = rng.standard_normal((inputs + hidden, 4 * hidden))
    bias = rng.standard_normal(4 * hidden)
    h0, c0 = rng.standard_normal((2, n, hidden))
    gy, gh_n, gc_n = rng.standard_normal((n, steps, hidden)), *rng.standard_normal((2, n, hidden))
    runs = []
    for impl in (cpu, ref):
        hs, cs = np.zeros((2, steps + 1, n, hidden))
        hs[0], cs[0] = h0, c0
        acts, tanh_c = np.zeros((steps, n, 4 * hidden)), np.zeros((steps, n, hidden))
        xh, y = np.zeros((steps, n, inputs + hidden)), np.zeros((n, steps, hidden))
        impl.lstm_seq_fwd(x, w_t, bias, lengths, fused, chunk, hs, cs, acts, tanh_c, xh, y)
        dc, dh = gc_n.copy(), np.zeros((n, hidden))
        dx, dw, db = np.zeros_like(x), np.ones((4 * hidden, inputs + hidden)), np.ones(4 * hidden)
        impl.lstm_seq_bwd(
            w_t, acts, tanh_c, cs, xh, lengths, gy, gh_n, dc, dh, fused, chunk, dx, dw, db
        )
        runs.append((hs, cs, acts, tanh_c, xh, y, dc, dh, dx, dw, db))
    names = ("hs", "cs", "acts", "tanh_c", "xh", "y", "dc0", "dh0", "dx", "dw", "db")
    for name, got, want in zip(names, *runs):
        _assert_close(f"blocks={blocks} fused={fused} {name}", got, want, 1e-12)
    # Inference keeps one slot per buffer (states alternate): same outputs and final state.
    hs, cs = np.zeros((2, 2, n, hidden))
    hs[0], cs[0] = h0, c0
    one = [np.zeros((1, n, k)) for k in (4 * hidden, hidden, inputs + hidden)]
    y = np.zeros((n, steps, hidden))
    cpu.lstm_seq_fwd(x, w_t, bias, lengths, fused, chunk, hs, cs, *one, y)
    _assert_close("inference y", y, runs[1][5], 1e-12)
    _assert_close("inference h_n", hs[steps % 2], runs[1][0][steps], 1e-12)
    _assert_close("inference c_n", cs[steps % 2], runs[1][1][steps], 1e-12)


@st.composite
def tile_case(draw):
    """Batches across tile (6 rows) and block boundaries, hidden sizes with partial and whole
    16-unit panels, padded steps (rows past their end carry their state) or none."""
    n, steps = draw(st.integers(1, 14)), draw(st.integers(1, 4))
    full = draw(st.booleans())
    lengths = (
        [steps] * n if full else draw(st.lists(st.integers(1, steps), min_size=n, max_size=n))
    )
    return dict(
        n=n,
        steps=steps,
        inputs=draw(st.integers(1, 5)),
        hidden=draw(st.sampled_from([1, 3, 16, 17, 32])),
        lengths=np.array(lengths, np.int64),
        keep=draw(st.booleans()),
        blocks=draw(st.integers(1, 3)),
        aligned=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
    )


def _output_buffer(shape, aligned):
    """Zeros of ``shape`` (float32) starting on a 64-byte line, or 4 bytes past one: the tile
    kernel streams whole output lines only in the first case."""
    size = int(np.prod(shape))
    raw = np.zeros(size + 32, np.float32)
    skip = (-raw.ctypes.data % 64) // 4 + (0 if aligned else 1)
    return raw[skip : skip + size].reshape(shape)


@settings(max_examples=20)
@given(tile_case())
def test_tiled_float32_forward_matches_the_float64_reference(case):
    """The fused tile kernel (GEMM and cell per tile of 6 rows x 16 units) gives the reference's
    outputs and saved buffers, within float32 rounding, on any rows, units, lengths, blocks."""
    from kernels.cpu import _lstm_tiles

    n, steps, inputs, hidden = case["n"], case["steps"], case["inputs"], case["hidden"]
    lengths, keep = case["lengths"], case["keep"]
    r = np.random.default_rng(case["seed"])
    x = r.standard_normal((n, steps, inputs)).astype(np.float32)
    w_t = (0.5 * r.standard_normal((inputs + hidden, 4 * hidden))).astype(np.float32)
    bias = r.standard_normal(4 * hidden).astype(np.float32)
    h0, c0 = r.standard_normal((2, n, hidden)).astype(np.float32)
    kept = steps if keep else 1
    runs = []
    for dtype in (np.float32, np.float64):
        hs, cs = np.zeros((2, kept + 1, n, hidden), dtype)
        hs[0], cs[0] = h0, c0
        acts, tanh_c = np.zeros((kept, n, 4 * hidden), dtype), np.zeros((kept, n, hidden), dtype)
        xh, y = np.zeros((kept, n, inputs + hidden), dtype), np.zeros((n, steps, hidden), dtype)
        if dtype == np.float32:
            y = _output_buffer((n, steps, hidden), case["aligned"])
            buffers = (hs, cs, acts, tanh_c, xh, y, case["blocks"])
            _lstm_tiles.seq_fwd(x, w_t, bias, lengths, *buffers)
        else:
            x64, w64, b64 = (a.astype(dtype) for a in (x, w_t, bias))
            ref.lstm_seq_fwd(x64, w64, b64, lengths, False, 1, hs, cs, acts, tanh_c, xh, y)
        last = steps if keep else steps % 2
        runs.append(dict(y=y, h_n=hs[last], c_n=cs[last], acts=acts, tanh_c=tanh_c, xh=xh))
    names = ("y", "h_n", "c_n", "acts", "tanh_c", "xh") if keep else ("y", "h_n", "c_n")
    for name in names:
        _assert_close(f"tiled {name} ({case})", runs[0][name], runs[1][name], 2e-5)


def test_fused_and_chunked_projections_match_one_chunk(rng, monkeypatch):
    """The forward's three ways to project the inputs, one GEMM of [x_t, h_{t-1}] per step
    (small I + H), one GEMM over all T steps, and chunks of 2 steps (last one partial, also in
    the backward), give the same outputs and gradients; so does the fused backward when the
    input needs no gradient."""
    lstm = LSTM(3, 4, num_layers=2, dtype=np.float64, rng=rng)
    x = rng.standard_normal((3, 5, 3))
    lengths = np.array([5, 2, 4])
    assert 3 + 4 <= lstm_layer._FUSE_MAX_K, "the default run should take the fused path"
    fused = _run(lstm, x, lengths=lengths)
    monkeypatch.setattr(lstm_layer, "_FUSE_MAX_K", 0)
    whole = _run(lstm, x, lengths=lengths)
    per_step = 4 * 3 * 4 * 8  # bytes of one step's projections: 4H B float64
    monkeypatch.setattr(lstm_layer, "_CHUNK_BYTES", 2 * per_step)
    assert lstm_layer._chunk_steps(3, 4, np.float64, 5) == 2
    chunked = _run(lstm, x, lengths=lengths)
    for label, run in (("fused", fused), ("chunked", chunked)):
        for name, a, b in zip(("y", "h_n", "c_n", "dx"), whole[:4], run[:4]):
            _assert_close(f"{label} {name}", b, a, 1e-12)
        for a, b in zip(whole[4], run[4]):
            _assert_close(f"{label} weight grad", b, a, 1e-12)
    monkeypatch.undo()  # fused again, now without an input gradient (a first layer on data)
    for p in lstm.parameters():
        p.grad = None
    y, (h, c) = lstm(Tensor(x), lengths=lengths)
    r = np.random.default_rng(0)  # the upstream gradients of _run
    loss = [(t * Tensor(r.standard_normal(t.shape))).sum() for t in (y, h, c)]
    (loss[0] + loss[1] + loss[2]).backward()
    for a, p in zip(whole[4], lstm.parameters()):
        _assert_close("fused, no dx: weight grad", p.grad, a, 1e-12)


@st.composite
def lstm_case(draw):
    n, steps = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(1, steps), min_size=n, max_size=n))
    if draw(st.booleans()):  # make sure both extremes occur
        lengths[0], lengths[-1] = 1, steps
    return dict(
        n=n,
        steps=steps,
        inputs=draw(st.integers(1, 3)),
        hidden=draw(st.integers(1, 3)),
        layers=draw(st.integers(1, 2)),
        lengths=np.array(lengths),
        with_state=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
    )


@settings(max_examples=10)
@given(lstm_case())
def test_gradcheck_inputs_state_and_all_weights(case):
    r = np.random.default_rng(case["seed"])
    layers, n, hidden = case["layers"], case["n"], case["hidden"]
    lstm = LSTM(case["inputs"], hidden, num_layers=layers, dtype=np.float64, rng=r)
    x = Tensor(r.standard_normal((n, case["steps"], case["inputs"])), requires_grad=True)
    h0 = Tensor(r.standard_normal((layers, n, hidden)), requires_grad=case["with_state"])
    c0 = Tensor(r.standard_normal((layers, n, hidden)), requires_grad=case["with_state"])
    params = list(lstm.parameters())

    def fn(x, h0, c0, *_):
        y, (h_n, c_n) = lstm(x, lengths=case["lengths"], state=(h0, c0))
        return y, h_n, c_n

    corenn.gradcheck(fn, [x, h0, c0, *params], eps=1e-6, atol=1e-7, rtol=1e-5, rng=r)


def _run(lstm, x, **kw):
    x = Tensor(x, requires_grad=True)
    for p in lstm.parameters():
        p.grad = None
    y, (h, c) = lstm(x, **kw)
    r = np.random.default_rng(0)
    loss = [(t * Tensor(r.standard_normal(t.shape).astype(t.dtype))).sum() for t in (y, h, c)]
    (loss[0] + loss[1] + loss[2]).backward()
    return y.data, h.data, c.data, x.grad, [p.grad.copy() for p in lstm.parameters()]


def test_masking_semantics(rng):
    n, steps, inputs, hidden = 4, 6, 3, 5
    lstm = LSTM(inputs, hidden, num_layers=2, dtype=np.float64, rng=rng)
    lengths = np.array([6, 1, 3, 4])
    x = rng.standard_normal((n, steps, inputs))
    y, h, c, gx, gw = _run(lstm, x, lengths=lengths)
    pad = np.arange(steps)[None, :] >= lengths[:, None]
    assert np.all(y[pad] == 0), "outputs at padded steps must be 0"
    assert np.all(gx[pad] == 0), "padded inputs must receive no gradient"
    x2 = x.copy()
    x2[pad] = rng.standard_normal(x2[pad].shape) * 100
    y2, h2, c2, gx2, gw2 = _run(lstm, x2, lengths=lengths)
    for name, a, b in (("y", y, y2), ("h_n", h, h2), ("c_n", c, c2), ("dx", gx, gx2)):
        np.testing.assert_allclose(b, a, atol=1e-12, err_msg=f"{name} changed with padding")
    for a, b in zip(gw, gw2):
        np.testing.assert_allclose(b, a, atol=1e-12, err_msg="weight gradient changed")
    mask = ~pad
    for a, b in zip(_run(lstm, x, mask=mask)[:4], (y, h, c, gx)):
        np.testing.assert_allclose(a, b, atol=1e-12, err_msg="mask and lengths disagree")
    # The final state of each sequence equals a run over that sequence alone, unpadded.
    for b in range(n):
        _, (hb, cb) = lstm(x[b : b + 1, : lengths[b]])
        np.testing.assert_allclose(hb.data[:, 0], h[:, b], atol=1e-12, err_msg=f"h_n[{b}]")
        np.testing.assert_allclose(cb.data[:, 0], c[:, b], atol=1e-12, err_msg=f"c_n[{b}]")


def test_numba_and_reference_layers_agree_in_float32(rng):
    lstm = LSTM(4, 6, num_layers=2, rng=rng)
    x = rng.standard_normal((5, 7, 4)).astype(np.float32)
    lengths = np.array([7, 2, 1, 5, 7])
    try:
        kernels.set_backend_override("reference")
        want = _run(lstm, x, lengths=lengths)
    finally:
        kernels.set_backend_override(None)
    got = _run(lstm, x, lengths=lengths)
    for name, a, b in zip(("y", "h_n", "c_n", "dx"), got[:4], want[:4]):
        assert a.dtype == np.float32, f"{name} dtype {a.dtype}"
        _assert_close(name, a, b, 2e-6)
    for a, b in zip(got[4], want[4]):
        _assert_close("weight grad", a, b, 2e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inference_calls_do_not_share_state(dtype, rng):
    """Inference reuses its scratch buffers between calls: outputs already returned stay as
    they were, and each call equals the training-mode forward on its own input."""
    lstm = LSTM(3, 4, num_layers=2, dtype=dtype, rng=rng)
    xs = [rng.standard_normal((5, 6, 3)).astype(dtype) for _ in range(2)]
    with corenn.no_grad():
        first = [t.data.copy() for t in _flat(lstm(xs[0]))]
        kept = _flat(lstm(xs[0]))
        second = _flat(lstm(xs[1]))
    for name, a, b in zip(("y", "h_n", "c_n"), first, kept):
        _assert_close(f"inference {name}, after another call", b.data, a, 0.0)
    for x, got in ((xs[0], first), (xs[1], [t.data for t in second])):
        want = _flat(lstm(Tensor(x, requires_grad=True)))
        for name, a, b in zip(("y", "h_n", "c_n"), got, want):
            _assert_close(f"inference vs training {name}", a, b.data, TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_input_reaches_only_its_own_sequence(dtype, rng):
    """A NaN in one sequence's input makes that sequence's outputs NaN from that step on, and
    leaves the other sequences finite (no clamp or approximation may hide it)."""
    lstm = LSTM(3, 16, dtype=dtype, rng=rng)
    x = rng.standard_normal((7, 4, 3)).astype(dtype)
    x[2, 1, 0] = np.nan
    with corenn.no_grad():
        y, (h, c) = lstm(x)
    assert np.isnan(y.data[2, 1:]).all(), "NaN input did not propagate to its sequence"
    others = np.delete(y.data, 2, axis=0)
    assert np.isfinite(others).all() and np.isfinite(y.data[2, 0]).all(), "NaN leaked"
    assert np.isnan(h.data[0, 2]).all() and np.isnan(c.data[0, 2]).all()


def _flat(out):
    y, (h, c) = out
    return [y, h, c]


def test_empty_batch_gives_empty_outputs_and_zero_weight_gradients(rng):
    lstm = LSTM(3, 4, num_layers=2, rng=rng)
    x = Tensor(np.zeros((0, 5, 3), np.float32), requires_grad=True)
    y, (h, c) = lstm(x)
    assert y.shape == (0, 5, 4) and h.shape == c.shape == (2, 0, 4), f"{y.shape}, {h.shape}"
    y.backward(np.zeros(y.shape, np.float32))
    assert x.grad.shape == (0, 5, 3), f"dx shape {x.grad.shape}"
    for name, p in lstm.named_parameters():
        assert not np.any(p.grad), f"{name}: nonzero gradient from an empty batch"


def test_errors_name_the_problem(rng):
    lstm = LSTM(3, 4, rng=rng)
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"LSTM\(3, 4.*\(2, 5, 2\).*\(B, T, 3\)"):
        lstm(np.zeros((2, 5, 2), np.float32))
    with pytest.raises(ValueError, match="length 0 of sequence 1"):
        lstm(x, lengths=[5, 0])
    with pytest.raises(ValueError, match="length 6 of sequence 0"):
        lstm(x, lengths=[6, 2])
    with pytest.raises(ValueError, match="not right-padded"):
        lstm(x, mask=np.array([[True, False, True, False, False]] * 2))
    with pytest.raises(ValueError, match="either lengths or mask"):
        lstm(x, lengths=[1, 1], mask=np.ones((2, 5), bool))
    with pytest.raises(ValueError, match=r"h0 of shape \(2, 4\)"):
        lstm(x, state=(np.zeros((2, 4), np.float32), np.zeros((1, 2, 4), np.float32)))
    with pytest.raises(TypeError, match="float64"):
        lstm(x.astype(np.float64))


def test_init_options(rng):
    hidden = 6
    lstm = LSTM(3, hidden, num_layers=2, rng=rng, forget_bias=1.0, recurrent_init="orthogonal")
    for k in range(2):
        b_ih, b_hh = (getattr(lstm, f"bias_{s}_l{k}").data for s in ("ih", "hh"))
        np.testing.assert_array_equal(b_ih[hidden : 2 * hidden] + b_hh[hidden : 2 * hidden], 1)
        w = getattr(lstm, f"weight_hh_l{k}").data.reshape(4, hidden, hidden)
        for blk in w:
            np.testing.assert_allclose(blk @ blk.T, np.eye(hidden), atol=1e-5)
    bound = 1 / np.sqrt(hidden)
    plain = LSTM(3, hidden, rng=rng)
    for name, p in plain.named_parameters():
        assert np.abs(p.data).max() <= bound, f"{name} exceeds U(-1/sqrt(H), 1/sqrt(H))"


def test_dropout_only_between_layers_in_training(rng):
    lstm = LSTM(3, 4, num_layers=2, dropout=0.5, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 3, 3))
    a, b = lstm(x)[0].data, lstm(x)[0].data
    assert not np.allclose(a, b), "dropout in training mode should draw fresh masks"
    lstm.eval()
    np.testing.assert_array_equal(lstm(x)[0].data, lstm(x)[0].data)


def test_matches_torch_on_variable_lengths(rng):
    torch = pytest.importorskip("torch", reason="torch is not installed: torch oracle skipped")
    n, steps, inputs, hidden, layers = 4, 6, 3, 5, 2
    ours = LSTM(inputs, hidden, num_layers=layers, dtype=np.float64, rng=rng)
    theirs = torch.nn.LSTM(inputs, hidden, num_layers=layers, batch_first=True).double()
    assert set(ours.state_dict()) == set(theirs.state_dict()), "parameter names differ"
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    lengths = np.array([6, 2, 1, 4])
    x = rng.standard_normal((n, steps, inputs))
    h0, c0 = rng.standard_normal((2, layers, n, hidden))
    y, h, c, gx, gw = _run(ours, x, lengths=lengths, state=(h0, c0))

    xt = torch.tensor(x, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    out, (ht, ct) = theirs(packed, (torch.tensor(h0), torch.tensor(c0)))
    yt, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=steps)
    r = np.random.default_rng(0)
    loss = sum((t * torch.tensor(r.standard_normal(t.shape))).sum() for t in (yt, ht, ct))
    loss.backward()
    names = [name for name, _ in ours.named_parameters()]
    torch_params = dict(theirs.named_parameters())
    pairs = [("y", y, yt), ("h_n", h, ht), ("c_n", c, ct), ("dx", gx, xt.grad)]
    pairs += [(f"d{nm}", g, torch_params[nm].grad) for nm, g in zip(names, gw)]
    for name, a, b in pairs:
        err = np.max(np.abs(a - b.detach().numpy()))
        assert err < 1e-10, f"{name} differs from torch by {err:.3g}"
