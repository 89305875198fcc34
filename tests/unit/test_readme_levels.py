"""Level names in the README's command examples are real level names (not file-name spellings)."""

import re
import shlex
from pathlib import Path

import pytest

from metamlip.qm.levels import parse_level

README = Path(__file__).parents[2] / "README.md"


def export_levels() -> list[str]:
    levels = []
    for line in README.read_text().splitlines():
        if line.lstrip().startswith("metamlip-export") and "--level" in line:
            words = shlex.split(line.split("#")[0])
            levels.append(words[words.index("--level") + 1])
    return levels


def test_the_readme_has_export_examples_with_levels():
    assert export_levels()


@pytest.mark.parametrize("level", export_levels())
def test_export_examples_use_level_names(level):
    parse_level(level)
    assert not re.search(r"_|gs$", level), f"{level!r} is a file-name spelling; levels are written like 'hf/6-31g*'"
