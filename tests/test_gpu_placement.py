"""Device placement in corenn: Tensor.to, Module.to, optimizer state that follows its parameters,
save/load through host arrays, and the error when a GPU is asked for and none is present.

Each behaviour is one body run per device: ``"cpu"``; ``"gpu"`` (skipped with the reason when
cupy or a CUDA device is missing); and ``"simulator"`` (only in the CUDA simulator's process that
tests/test_gpu_simulator.py starts), where tests/_fake_cupy.py plays cupy: host arrays that pass
for device arrays and refuse to meet numpy arrays, so the whole GPU path (dispatch, layers,
optimizers, the ``numba.cuda`` kernels on the simulator) runs and a host array left in it fails.
"""

from __future__ import annotations

import numpy as np
import pytest

import corenn
from corenn import F, Tensor
from kernels.gpu import _device

DEVICES = ["cpu", "gpu", "simulator"] if _device.simulated() else ["cpu", "gpu"]


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    if request.param == "gpu" and (not _device.available() or _device.simulated()):
        pytest.skip("no GPU: cupy is not installed or CUDA reports no device")
    if request.param == "simulator":
        import _fake_cupy

        _fake_cupy.install(monkeypatch)
        return "gpu"
    return request.param


class Tagger(corenn.Module):
    """Embedding -> LSTM -> Dense: the layers (and kernels) of the sequence model."""

    def __init__(self, rng):
        super().__init__()
        self.embed = corenn.Embedding(7, 3, dtype=np.float64, rng=rng)
        self.lstm = corenn.LSTM(3, 4, dtype=np.float64, rng=rng)
        self.out = corenn.Dense(4, 1, dtype=np.float64, rng=rng)

    def forward(self, ids, lengths):
        y, _ = self.lstm(self.embed(ids), lengths=lengths)
        return self.out(y)


def _train(model, device, steps, rng_data):
    """Adam steps on ``model``; the optimizer is made (and stepped once) before the move."""
    ids = rng_data.integers(0, 7, (4, 5))
    lengths = np.array([5, 3, 1, 4])
    target = rng_data.standard_normal((4, 5, 1))
    opt = corenn.optim.Adam(model.parameters(), lr=0.05)
    for step in range(steps):
        if step == 1:
            model.to(device)
        on = model.embed.weight.device
        loss = F.mse_loss(model(Tensor(ids).to(on), lengths), Tensor(target).to(on))
        opt.zero_grad()
        loss.backward()
        corenn.clip_grad_norm(model.parameters(), 1.0)
        opt.step()
    return opt


def test_tensor_to_moves_the_data_and_back(device, rng):
    x = rng.standard_normal((2, 3))
    t = Tensor(x, requires_grad=True)
    moved = t.to(device)
    assert moved.device == device and moved.requires_grad and moved.dtype == np.float64
    assert moved.to(device) is moved
    back = moved.to("cpu")
    assert back.device == "cpu" and isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), x)
    p = corenn.Parameter(x)
    assert isinstance(p.to(device), corenn.Parameter)


def test_training_after_a_move_matches_the_cpu(device, rng):
    seed = rng.integers(1 << 30)
    reference = Tagger(np.random.default_rng(seed))
    _train(reference, "cpu", 3, np.random.default_rng(1))
    moved = Tagger(np.random.default_rng(seed))
    opt = _train(moved, device, 3, np.random.default_rng(1))
    for (name, p), q in zip(moved.named_parameters(), reference.parameters(), strict=True):
        assert p.device == device, name
        np.testing.assert_allclose(p.to("cpu").numpy(), q.numpy(), rtol=1e-9, err_msg=name)
        for key, value in opt.state[p].items():
            if hasattr(value, "shape"):
                assert corenn.backend.device_of(value) == device, f"{name} state {key}"


def test_save_writes_host_arrays_and_loads_on_either_device(device, rng, tmp_path):
    model = Tagger(np.random.default_rng(3))
    opt = _train(model, device, 2, np.random.default_rng(1))
    path = tmp_path / "state.npz"
    corenn.save({"model": model.state_dict(), "optim": opt.state_dict()}, path)
    loaded = corenn.load(path)
    assert all(isinstance(v, np.ndarray) for v in loaded["model"].values())
    fresh = Tagger(np.random.default_rng(4)).to(device)
    fresh.load_state_dict(loaded["model"])
    for (name, p), q in zip(fresh.named_parameters(), model.parameters(), strict=True):
        assert p.device == device, name
        np.testing.assert_array_equal(p.to("cpu").numpy(), q.to("cpu").numpy(), err_msg=name)
    opt2 = corenn.optim.Adam(fresh.parameters(), lr=0.05)
    opt2.load_state_dict(loaded["optim"])
    state = next(iter(opt2.state.values()))
    assert corenn.backend.device_of(state["exp_avg"]) == device


def test_an_unknown_device_is_refused_and_nothing_moves(rng):
    model = Tagger(rng)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        Tensor([1.0]).to("tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        model.to("tpu")
    assert all(p.device == "cpu" for p in model.parameters())


@pytest.mark.skipif(
    _device.available() or _device.simulated(), reason="a GPU (or the CUDA simulator) is present"
)
def test_asking_for_a_missing_gpu_names_the_problem(rng):
    with pytest.raises(corenn.backend.GPUUnavailableError, match="a GPU was asked for, but"):
        Tensor([1.0]).to("gpu")
    model = Tagger(rng)
    with pytest.raises(RuntimeError, match="cupy is not installed|CUDA reports"):
        model.to("gpu")
    assert all(p.device == "cpu" for p in model.parameters())
