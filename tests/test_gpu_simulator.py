"""Run the GPU test modules under Numba's CUDA simulator, in a child process.

``NUMBA_ENABLE_CUDASIM`` must be set before numba is first imported, which this process has
already done; a child ``pytest`` started with it runs the ``"simulator"`` variants of
tests/test_gpu_kernels.py, tests/test_gpu_pgm.py and tests/test_gpu_placement.py (the
``numba.cuda`` kernels on host arrays; corenn's GPU path with tests/_fake_cupy.py playing cupy)
and must pass them all.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kernels.gpu import _device

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["tests/test_gpu_kernels.py", "tests/test_gpu_pgm.py", "tests/test_gpu_placement.py"]


@pytest.mark.skipif(_device.simulated(), reason="already inside the simulator")
def test_gpu_kernels_pass_under_the_cuda_simulator():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NUMBA_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "simulator"]
    done = subprocess.run(
        [*command, "--hypothesis-profile=ci", *MODULES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, (
        f"simulator run failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    )
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 20, f"too few simulator tests ran: {summary}"
    assert "skipped" not in summary, f"a simulator test skipped: {summary}"
