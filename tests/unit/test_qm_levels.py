"""Level strings: canonical forms, file names and error messages."""

import pytest

from metamlip.qm.levels import Level, LevelError, parse_level


@pytest.mark.parametrize(
    "text, family, name, stem",
    [
        ("gfn2-xtb", "xtb", "gfn2-xtb", "gfn2-xtb"),
        ("GFN1-xTB", "xtb", "gfn1-xtb", "gfn1-xtb"),
        ("HF/6-31G*", "hf", "hf/6-31g*", "hf_6-31gs"),
        ("mp2/cc-pVDZ", "mp2", "mp2/cc-pvdz", "mp2_cc-pvdz"),
        ("b3lyp/6-31g*", "dft", "b3lyp/6-31g*", "b3lyp_6-31gs"),
        (" pbe/def2-svp ", "dft", "pbe/def2-svp", "pbe_def2-svp"),
        ("wb97x/def2-svp", "dft", "wb97x/def2-svp", "wb97x_def2-svp"),
    ],
)
def test_good_levels(text, family, name, stem):
    level = parse_level(text)
    assert isinstance(level, Level)
    assert (level.family, level.name, level.file_stem) == (family, name, stem)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty level"),
        ("hf", "missing basis, expected 'hf/<basis>'"),
        ("b3lyp/", "missing basis"),
        ("gfn2-xtb/sto-3g", "xTB method 'gfn2-xtb' takes no basis (got 'sto-3g')"),
        ("foo/sto-3g", "unknown method 'foo'"),
        ("hf/foo-basis", "unknown basis 'foo-basis'"),
        ("hf/sto-3g/x", "expected one '/'"),
    ],
)
def test_bad_levels(text, message):
    with pytest.raises(LevelError) as info:
        parse_level(text)
    assert message in str(info.value)
