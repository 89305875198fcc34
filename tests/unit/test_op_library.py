"""The one loader of the op library: loads once, checks torch version and ABI."""

import pytest
import torch

from metamlip.ops import _library
from metamlip.ops._library import OpLibraryError, load_library


def test_loads_once_and_registers_ops():
    first = load_library()
    assert load_library() == first
    assert first.name == "libmetamlip_ops.so"
    info = torch.ops.metamlip.build_info()
    assert f"torch={torch.__version__}" in info


def test_version_mismatch_says_what_to_rebuild(monkeypatch):
    load_library()
    monkeypatch.setattr(torch, "__version__", "2.99.0")
    with pytest.raises(OpLibraryError, match=r"built for torch 2\.9\.1.*but torch 2\.99\.0 .*Rebuild it: `make install`"):
        _library._check_build_info(_library.library_path())


def test_missing_library_says_how_to_build(monkeypatch):
    monkeypatch.setattr(_library, "LIBRARY_NAME", "libnot_there.so")
    with pytest.raises(OpLibraryError, match=r"was not found .*`make install`"):
        _library.library_path()
