"""A real ``bundlerec serve`` process for the tests that need one (kill -9, a browser)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx

from bundlerec.datasets import synthetic_shop
from bundlerec.recommender import Recommender

SMALL_SEQ = {"dim": 16, "hidden": 16, "epochs": 2, "batch_size": 128, "patience": None}


def small_model(path: Path) -> tuple[Path, list[str]]:
    """Fit and save a small model of the synthetic shop; return its path and shopper ids."""
    events, items, users = synthetic_shop(n_users=150, n_items=60, n_days=30, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Recommender(sequence=SMALL_SEQ, network={"n_top": 30}).fit(events, items, users)
    model.save(path)
    return path, sorted(set(events["user_id"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``bundlerec serve`` in a child process, waited for until /health answers."""

    def __init__(self, *args: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
        self._log = open(log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bundlerec.cli", "serve", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {log}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"the server did not answer /health in 120 s: {log}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self._log.close()
