"""The arrows of docs/architecture.md (and STYLE.md), read from the source's import statements.

``kernels`` imports nothing of ours; ``corenn`` and ``pgm`` use ``kernels`` and never each other;
``bundlerec`` uses ``corenn`` and ``pgm``; nothing imports ``bundlerec``. Across packages only the
top-level package (its public API) is imported, never a submodule. Only ``kernels/cpu/`` and
``kernels/gpu/`` (its CUDA target) import numba, only ``kernels/gpu/`` imports cupy, and
corenn's functions never reach into its layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kernels", "corenn", "pgm", "bundlerec")
ALLOWED = {
    "kernels": set(),
    "corenn": {"kernels"},
    "pgm": {"kernels"},
    "bundlerec": {"corenn", "pgm"},
}


def imports(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """``(absolute module name, line)`` of every import in a source file (relative resolved)."""
    module_parts = list(path.relative_to(root).with_suffix("").parts)
    package = module_parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.append((name, node.lineno))
    return found


def violations(path: Path, root: Path = ROOT) -> list[str]:
    """Every import of ``path`` that breaks a rule of the module docstring."""
    where = path.relative_to(root)
    package = where.parts[0]
    found = []
    for name, line in imports(path, root):
        top = name.split(".")[0]
        if top in PACKAGES and top != package:
            if top not in ALLOWED[package]:
                found.append(f"{where}:{line}: {package} must not import {name}")
            elif name != top:
                found.append(f"{where}:{line}: import {top}'s public API, not {name}")
        if top == "numba" and where.parts[:2] not in (("kernels", "cpu"), ("kernels", "gpu")):
            found.append(f"{where}:{line}: numba outside kernels/cpu and kernels/gpu")
        if top == "cupy" and where.parts[:2] != ("kernels", "gpu"):
            found.append(f"{where}:{line}: cupy outside kernels/gpu")
        inside_ops = where.parts[:2] in (("corenn", "ops"), ("corenn", "functional.py"))
        if inside_ops and name.startswith("corenn.layers"):
            found.append(f"{where}:{line}: corenn's functions reach into its layers")
        implementation = name.startswith(("kernels.cpu", "kernels.gpu"))
        if where.parts[:2] == ("kernels", "reference") and implementation:
            found.append(f"{where}:{line}: the reference depends on an implementation")
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


ALL = [path for package in PACKAGES for path in sources(package)]


def test_the_packages_are_found():
    for package in PACKAGES:
        assert len(sources(package)) >= 3, f"no sources found for {package}"


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(ROOT)) for p in ALL])
def test_imports_follow_the_arrows(path):
    assert violations(path) == []


def test_the_checker_sees_violations(tmp_path):
    probe = tmp_path / "pgm" / "learning" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from ...corenn import Tensor\nfrom .. import factor\nimport numba\n")
    assert imports(probe, tmp_path) == [("corenn", 1), ("pgm", 2), ("numba", 3)]
    assert len(violations(probe, tmp_path)) == 2
    (tmp_path / "corenn").mkdir()
    deep = tmp_path / "corenn" / "functional.py"
    deep.write_text("from kernels.cpu import lstm\nfrom corenn.layers.lstm import LSTM\n")
    assert len(violations(deep, tmp_path)) == 2
