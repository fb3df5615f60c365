"""The shop owner's page in a real headless browser (Chromium): bundles render."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from _served import Server, small_model

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (.ci/run installs it)"
)
API_KEY = "an-api-key-for-the-page-test"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    model, shoppers = small_model(folder / "model")
    (folder / "api-key").write_text(API_KEY + "\n")
    running = Server(
        "--model", str(model), "--api-key-file", str(folder / "api-key"), log=folder / "log"
    )
    yield running, shoppers, folder
    running.kill()


def _browser(*args: str) -> str:
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--virtual-time-budget=15000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_bundles_render_with_prices_lift_and_reasons(server):
    running, shoppers, _ = server
    page = f"{running.url}/?user={shoppers[5]}&anchor=i0003&k=2&show=1&key={API_KEY}"
    dom = _browser("--dump-dom", page)
    boxes = re.findall(r'<div class="bundle" data-testid="bundle">(.*?)</table></div>', dom, re.S)
    assert len(boxes) == 2, dom[-3000:]
    for box in boxes:
        assert "i0003" in box  # the anchor leads every bundle
        assert re.search(r"total \d+\.\d\d", box)
        assert re.search(r"lift \d|never bought together|a single item", box)
        assert len(re.findall(r'<td class="price">\d+\.\d\d</td>', box)) == 3
        assert "because" in box or "anchor" in box
    assert "2 bundle(s)" in dom


def test_a_wrong_key_shows_the_error(server):
    running, shoppers, _ = server
    dom = _browser("--dump-dom", f"{running.url}/?user={shoppers[5]}&show=1&key=wrong")
    assert 'class="error"' in dom and "API key" in dom
    assert 'class="bundle"' not in dom


def test_screenshot_shows_the_bundle_boxes(server, tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="reading the screenshot needs Pillow")

    running, shoppers, _ = server
    base = f"{running.url}/?user={shoppers[5]}&anchor=i0003&k=3&key={API_KEY}"
    shots = {}
    for name, url in (("empty", base), ("bundles", base + "&show=1")):
        path = tmp_path / f"{name}.png"
        _browser(f"--screenshot={path}", "--window-size=1100,1400", url)
        pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
        # the bundle boxes' background, #f7f9fc
        shots[name] = int((pixels == (247, 249, 252)).all(axis=1).sum())
    assert shots["empty"] == 0
    assert shots["bundles"] > 20_000, shots
