"""metamlip.atomic.atomic_path: all-or-nothing replacement with ordinary permissions."""

import os
import stat

import pytest

from metamlip.atomic import atomic_path


def test_replaces_the_file_with_umask_permissions(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".pt")
        tmp.write_text("new")
    assert target.read_text() == "new"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_an_exception_keeps_the_previous_file(tmp_path):
    target = tmp_path / "data.extxyz"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.extxyz"]
