"""metamlip-data end to end: sample -> label -> info, and error reporting."""

import ase.io

from metamlip.cli.data import main


def test_sample_label_info(tmp_path, capsys):
    configs = tmp_path / "configs.extxyz"
    assert main(["sample", "H2O", "NH3", "--temperatures", "300", "--n-frames", "3",
                 "--stride", "2", "--equilibration", "4", "--seed", "5", "-q",
                 "-o", str(configs)]) == 0
    labelled = tmp_path / "gfn2-xtb.extxyz.gz"
    assert main(["label", str(configs), "--level", "GFN2-xTB", "-o", str(labelled),
                 "--chunk-size", "2", "-q"]) == 0
    frames = ase.io.read(labelled, ":")
    assert [f.info["config_id"] for f in frames] == [
        f"{m}-300K-s5-{i:04d}" for m in ("H2O", "NH3") for i in range(3)]
    assert all(f.info["level"] == "gfn2-xtb" and f.info["program"].startswith("tblite ")
               for f in frames)
    capsys.readouterr()
    assert main(["info", str(configs), str(labelled)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["-", "H2O", "3", "-", "-", "-", "-", "-", "H,O"] in rows  # configs: no labels
    labelled_rows = [r for r in rows if r[0] == "gfn2-xtb"]
    assert [(r[1], r[2], r[-1]) for r in labelled_rows] == [
        ("H2O", "3", "H,O"), ("NH3", "3", "H,N")]
    for row in labelled_rows:  # E min <= E max < 0, E/atom = E / n_atoms, max |F| > 0
        e_min, e_max, ea_min, ea_max, f_max = map(float, row[3:8])
        assert e_min <= e_max < 0 and ea_min <= ea_max < 0 and f_max > 0
    assert out.count("total frames: 6") == 2


def test_bad_level_is_reported(tmp_path, capsys):
    code = main(["label", str(tmp_path / "none.extxyz"), "--level", "hf/nobasis",
                 "-o", str(tmp_path / "out.extxyz")])
    assert code == 2
    assert "unknown basis 'nobasis'" in capsys.readouterr().err
