"""Atomic writes give ordinary permissions, and leave nothing behind on failure."""

from __future__ import annotations

import stat

import pytest

from bundlerec.files import temporary_directory, write_atomically


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_readable_by_others_and_a_replaced_one_keeps_its_mode(tmp_path):
    target = tmp_path / "out" / "table.csv"
    write_atomically(target, lambda tmp: tmp.write_text("a\n"))
    assert target.read_text() == "a\n"
    assert mode(target) == 0o644
    target.chmod(0o600)
    write_atomically(target, lambda tmp: tmp.write_text("b\n"))
    assert target.read_text() == "b\n"
    assert mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(target, fail)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_a_temporary_directory_is_an_ordinary_one_beside_its_target(tmp_path):
    tmp = temporary_directory(tmp_path / "model")
    assert tmp.parent == tmp_path and tmp.name.startswith(".model.")
    assert mode(tmp) == 0o755
