"""Every code block of README.md and docs/*.md works as written.

``python`` blocks run, in order, in one namespace per document, in a scratch directory (built-in
data only). ``bash`` blocks are checked line by line: each ``bundlerec ...`` command must parse
with the real CLI parser (so no documented option is missing), and each path of this repository
they name (``bench/...``, ``tests/...``, ``docs/...``) must exist. ``text`` blocks are output and
diagrams. A block without one of these tags fails, so no block is silently skipped.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bundlerec.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)
TAGS = {"python", "bash", "text"}


def blocks(path: Path) -> list[tuple[str, str, int]]:
    """``(tag, body, line)`` of each fenced block of a Markdown file."""
    text = path.read_text()
    return [
        (m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
    ]


def commands(body: str) -> list[list[str]]:
    """Shell command lines of a block (``\\`` continuations joined, ``&&`` chains split)."""
    joined = re.sub(r"\\\n\s*", " ", body)
    out = []
    for line in joined.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        for part in line.split("&&"):
            words = shlex.split(part)
            while words and "=" in words[0] and not words[0].startswith("-"):
                words = words[1:]  # VAR=value prefixes
            if words:
                out.append(words)
    return out


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_block_is_tagged(path):
    untagged = [(tag, line) for tag, _, line in blocks(path) if tag not in TAGS]
    assert not untagged, f"{path.name}: blocks without a python/bash/text tag at {untagged}"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_shell_blocks_name_real_commands_and_files(path):
    parser = build_parser()
    for tag, body, line in blocks(path):
        if tag != "bash":
            continue
        for words in commands(body):
            if words[0] == "bundlerec":
                try:
                    parser.parse_args(words[1:])
                except SystemExit:
                    pytest.fail(f"{path.name}:{line}: `{' '.join(words)}` does not parse")
            for word in words:
                if re.match(r"^(bench|tests|docs)/[\w./-]+$", word):
                    assert (ROOT / word).exists(), f"{path.name}:{line}: {word} does not exist"


PYTHON_DOCUMENTS = [p for p in DOCUMENTS if any(tag == "python" for tag, _, _ in blocks(p))]


@pytest.mark.parametrize("path", PYTHON_DOCUMENTS, ids=lambda p: p.name)
def test_python_blocks_run(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for tag, body, line in blocks(path):
        if tag != "python":
            continue
        code = compile(body, f"{path.name}:{line}", "exec")
        exec(code, namespace)  # noqa: S102 - the documentation's own examples
    assert capsys.readouterr().out, f"{path.name}: the examples print nothing"
