"""The CUDA switch of the CMake configure step (cmake/CudaOption.cmake): one line saying whether
the kernels are built and why, METAMLIP_CUDA from the environment overriding, bad values refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def configure(tmp_path: Path, value: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, METAMLIP_CUDA=value)
    command = ["cmake", "-S", str(ROOT), "-B", str(tmp_path / "build"), f"-DPython_EXECUTABLE={sys.executable}",
               "-DMETAMLIP_LAMMPS_PLUGIN=OFF"]  # fmt: skip
    return subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
@pytest.mark.parametrize(
    ("value", "ok", "expected"),
    [
        ("OFF", True, "metamlip: CUDA kernels off (METAMLIP_CUDA=OFF)"),
        ("sometimes", False, "metamlip: METAMLIP_CUDA must be AUTO, ON or OFF, got 'SOMETIMES'"),
    ],
)
def test_cuda_switch_from_the_environment(tmp_path, value, ok, expected):
    proc = configure(tmp_path, value)
    assert (proc.returncode == 0) == ok, proc.stdout[-3000:]
    assert expected in proc.stdout, proc.stdout[-3000:]
    if ok:
        assert proc.stdout.count("metamlip: CUDA kernels") == 1
