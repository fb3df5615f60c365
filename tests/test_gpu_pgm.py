"""pgm's batch queries with ``VariableElimination(model, device="gpu")`` against the CPU engine.

The device variants run where the GPU kernels can: ``"simulator"`` (Numba's CUDA simulator, in
the child process of tests/test_gpu_simulator.py: the whole GPU path, kernels included, on host
arrays, with tests/_fake_cupy.py playing cupy) and ``"gpu"`` (skipped with the reason when there
is no device). The error tests run in
every process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pgm
from kernels.gpu import _device

NETWORK = Path(__file__).parent / "networks" / "clinic.bif"
DEVICES = ["simulator", "gpu"] if _device.simulated() else ["gpu"]


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    if request.param == "gpu" and (not _device.available() or _device.simulated()):
        pytest.skip("no GPU: cupy is not installed or CUDA reports no device")
    if request.param == "simulator":  # device arrays that refuse numpy operands, as cupy's
        import _fake_cupy

        _fake_cupy.install(monkeypatch)
    return request.param


@pytest.fixture(scope="module")
def model():
    return pgm.read_bif(NETWORK)


def evidence_cases(model, rng, n_cases=4):
    """Evidence for Fever and Cough (Cough unobserved in one case: a per-case likelihood)."""
    columns = {}
    for name in ("Fever", "Cough"):
        card = len(model.get_cpds(name).state_names[name])
        columns[name] = rng.integers(0, card, n_cases)
    columns["Cough"][1] = -1
    return columns


def test_batch_queries_on_the_device_match_the_cpu(device, model, rng):
    cases = evidence_cases(model, rng)
    cpu = pgm.VariableElimination(model)
    gpu = pgm.VariableElimination(model, device="gpu")
    want = cpu.batch_query(["Infection", "Admit"], cases)
    got = gpu.batch_query(["Infection", "Admit"], cases)
    for name in want:
        assert isinstance(got[name], np.ndarray), "results come back as numpy arrays"
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(
        gpu.batch_probability_of_evidence(cases),
        cpu.batch_probability_of_evidence(cases),
        rtol=1e-12,
    )
    assert gpu.query(["Admit"], {"Fever": ">39.5"}).values == pytest.approx(
        cpu.query(["Admit"], {"Fever": ">39.5"}).values, rel=1e-12
    )  # single queries run on the CPU


def test_an_unknown_device_is_refused(model):
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        pgm.VariableElimination(model, device="tpu")


@pytest.mark.skipif(
    _device.available() or _device.simulated(), reason="a GPU (or the CUDA simulator) is present"
)
def test_asking_for_a_missing_gpu_names_the_problem(model):
    with pytest.raises(
        RuntimeError, match="a GPU was asked for, but (cupy is not installed|CUDA)"
    ):
        pgm.VariableElimination(model, device="gpu")
