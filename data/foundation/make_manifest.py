"""Writes manifest.yaml: which library systems each level labels (deterministic).

Every level but gfn2-xtb gets its own disjoint subset plus the shared anchor: the expensive
levels (MP2, B3LYP, PBE) the smallest systems (<= 12 atoms), the HF levels systems of <= 18
atoms, gfn1-xtb the rest; gfn2-xtb labels every system. hf/6-31g* (not yet started when density
fitting became available; mostly 13-18 atoms) uses density-fitted integrals (cc-pvdz-jkfit:
3.8x faster on styrene, ~2 meV/Angstrom in the forces, bench/density_fit.py); the other levels
keep the exact integrals they were started with (B3LYP on <= 12 atoms gains ~1.05x).
Run: python make_manifest.py
"""

import zlib
from pathlib import Path

import yaml
from rdkit import Chem

from metamlip.qm.library import Cluster, load_library

ANCHOR = ["H2O", "NH3", "CH4", "H2CO", "CH3OH", "HCOOH", "CH3CH2OH", "CH3CONH2", "formamide",
          "water-dimer"]
EXPENSIVE = [("mp2/cc-pvdz", 36), ("b3lyp/6-31g*", 36), ("pbe/def2-svp", 36)]
HF = [("hf/sto-3g", 70), ("hf/6-31g*", 70)]
GFN1 = 200


def n_atoms(library, system_id):
    system = library.get(system_id)
    members = system.members if isinstance(system, Cluster) else [system_id]
    return sum(Chem.AddHs(Chem.MolFromSmiles(library.molecules[m].smiles)).GetNumAtoms()
               for m in members)


def main():
    library = load_library()
    sizes = {s: n_atoms(library, s) for s in library.ids()}
    rest = sorted((s for s in library.ids() if s not in ANCHOR),
                  key=lambda s: zlib.crc32(s.encode()))  # a fixed shuffle
    subsets = {}
    for levels, max_atoms in ((EXPENSIVE, 12), (HF, 18)):
        for level, count in levels:
            chosen = [s for s in rest if sizes[s] <= max_atoms][:count]
            subsets[level] = chosen
            rest = [s for s in rest if s not in chosen]
    subsets["gfn1-xtb"] = rest[:GFN1]
    frames = {"gfn2-xtb": 40, "gfn1-xtb": 26, "hf/sto-3g": 20, "hf/6-31g*": 20,
              "mp2/cc-pvdz": 12, "b3lyp/6-31g*": 12, "pbe/def2-svp": 12}
    chunks = {"gfn2-xtb": 40, "gfn1-xtb": 26, "hf/sto-3g": 10, "hf/6-31g*": 10,
              "mp2/cc-pvdz": 4, "b3lyp/6-31g*": 4, "pbe/def2-svp": 4}
    density_fit = {"hf/6-31g*"}
    order = ["gfn2-xtb", "gfn1-xtb", "hf/sto-3g", "hf/6-31g*", "mp2/cc-pvdz", "b3lyp/6-31g*",
             "pbe/def2-svp"]
    manifest = {
        "name": "foundation",
        "root": ".",
        "seed": 0,
        "sampling": {"conformers": 4, "md_temperatures": [300, 600, 1200], "md_frames": 11,
                     "stride": 20, "equilibration": 150, "nm_temperatures": [300, 600],
                     "nm_frames": 4},
        "cluster_sampling": {"conformers": 1, "md_temperatures": [150, 300], "md_frames": 20,
                             "stride": 20, "equilibration": 150, "nm_frames": 0},
        "anchor": ANCHOR,
        "datasets": [{"level": level, "systems": "all" if level == "gfn2-xtb" else subsets[level],
                      "frames": frames[level], "chunk": chunks[level]}
                     | ({"density_fit": True} if level in density_fit else {})
                     for level in order],
    }
    text = yaml.safe_dump(manifest, sort_keys=False, width=100, default_flow_style=None)
    Path(__file__).with_name("manifest.yaml").write_text(
        "# Foundation pre-training campaign (issue 13); written by make_manifest.py\n" + text)


if __name__ == "__main__":
    main()
