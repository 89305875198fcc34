"""The molecule library: valid SMILES, distinct molecules, deterministic 3D structures."""

import numpy as np
import pytest

from rdkit import Chem
from rdkit.Chem.rdMolDescriptors import CalcMolFormula

from metamlip.qm.embedding import CONTACT_RANGE, embed_molecule, embed_system
from metamlip.qm.library import ELEMENTS, MAX_ATOMS, MIN_ATOMS, load_library

SOURCES = {"g2", "organic", "heterocycle", "nucleobase", "amino-acid", "drug-fragment"}


def test_library_molecules_are_valid_and_distinct():
    library = load_library()
    assert len(library.molecules) >= 300
    canonical = set()
    for m in library.molecules.values():
        mol = Chem.MolFromSmiles(m.smiles)
        assert mol is not None, m.id
        with_h = Chem.AddHs(mol)
        assert {a.GetSymbol() for a in with_h.GetAtoms()} <= set(ELEMENTS), m.id
        assert Chem.GetFormalCharge(mol) == 0, m.id
        assert sum(a.GetNumRadicalElectrons() for a in with_h.GetAtoms()) == 0, m.id
        assert MIN_ATOMS <= with_h.GetNumAtoms() <= MAX_ATOMS, m.id
        assert CalcMolFormula(mol) == m.formula, m.id
        assert m.source in SOURCES, m.id
        assert m.id.replace("-", "").replace("_", "").isalnum(), m.id  # usable as a file name
        canonical.add(Chem.MolToSmiles(mol))
    assert len(canonical) == len(library.molecules)  # no molecule written twice
    counts = {s: sum(m.source == s for m in library.molecules.values()) for s in SOURCES}
    assert counts["amino-acid"] >= 18 and counts["nucleobase"] >= 5 and counts["g2"] >= 50


def test_library_clusters():
    library = load_library()
    assert len(library.clusters) >= 30
    assert all(2 <= len(c.members) <= 4 for c in library.clusters.values())
    assert not set(library.clusters) & set(library.molecules)


def test_embedding_is_deterministic_and_matches_smiles():
    library = load_library()
    molecule = library.molecules["1-pentanol"]
    first = embed_molecule(molecule, 4, seed=0)
    second = embed_molecule(molecule, 4, seed=0)
    assert len(first) == 4  # a flexible molecule has distinct conformers
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
    assert first[0].get_chemical_formula() == "C5H12O"
    assert not np.allclose(first[0].positions, first[1].positions)
    other = embed_molecule(molecule, 1, seed=1)[0]
    assert other.get_chemical_formula() == "C5H12O"


def test_cluster_placement_without_overlap():
    library = load_library()
    first = embed_system("water-trimer", library, seed=3)[0]
    again = embed_system("water-trimer", library, seed=3)[0]
    np.testing.assert_array_equal(first.positions, again.positions)
    assert first.get_chemical_formula() == "H6O3" and first.info["molecule"] == "water-trimer"
    d = first.get_all_distances()
    for i, j in ((0, 3), (0, 6), (3, 6)):  # closest contact between members
        contact = d[i:i + 3, j:j + 3].min()
        assert contact > CONTACT_RANGE[0] - 0.05
    assert min(d[0:3, 3:6].min(), d[0:3, 6:9].min(), d[3:6, 6:9].min()) < CONTACT_RANGE[1] + 0.05


def test_unknown_system_is_named():
    with pytest.raises(ValueError, match="'unobtainium' is not a molecule or cluster"):
        load_library().get("unobtainium")
