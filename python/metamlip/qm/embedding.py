"""3D structures of library systems: RDKit conformers (ETKDG + MMFF) and cluster placement.

Deterministic: a molecule's conformers depend only on its SMILES, the conformer count and the
seed (RDKit's ``randomSeed`` per embedding, one thread); a cluster's placement draws from
``numpy.random.default_rng([seed, crc32(cluster id)])``. Positions in Angstrom.
"""

from __future__ import annotations

import zlib

import numpy as np
from ase import Atoms

from metamlip.qm.library import Cluster, Library, Molecule

EMBED_FACTOR = 3  # ETKDG embeds this many times the requested conformers, then distinct minima
DISTINCT_ENERGY = 0.01  # kcal/mol: MMFF minima closer in energy than this count as one
MMFF_MAX_ITERS = 2000
CONTACT_RANGE = (1.9, 2.6)  # Angstrom: closest intermolecular atom distance of a placed member
PLACEMENT_STEP = 0.02  # Angstrom


class EmbeddingError(ValueError):
    """A SMILES that RDKit could not embed in 3D."""


def embed_molecule(molecule: Molecule, n_conformers: int = 1, seed: int = 0) -> list[Atoms]:
    """Up to ``n_conformers`` distinct MMFF minima (fewer for rigid molecules), lowest MMFF
    energy first; each an Atoms with hydrogens, info ``molecule`` = id. Molecules MMFF cannot
    type keep their ETKDG structures in embedding order."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(molecule.smiles)
    if mol is None:
        raise EmbeddingError(f"molecule '{molecule.id}': RDKit cannot parse '{molecule.smiles}'")
    mol = Chem.AddHs(mol)
    conf_ids = []
    for attempt in range(EMBED_FACTOR * n_conformers):
        params = AllChem.ETKDGv3()  # one seed per conformer: a fixed seed in
        params.randomSeed = 1 + 1000 * seed + attempt  # EmbedMultipleConfs repeats one structure
        params.numThreads = 1
        trial = Chem.Mol(mol)
        if AllChem.EmbedMolecule(trial, params) == 0:
            conf_ids.append(mol.AddConformer(trial.GetConformer(), assignId=True))
    if not conf_ids:
        raise EmbeddingError(f"molecule '{molecule.id}': ETKDG found no 3D structure")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        results = AllChem.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=MMFF_MAX_ITERS)
        kept: list[tuple[float, int]] = []
        by_energy = sorted(zip(conf_ids, results, strict=True), key=lambda x: x[1][1])
        for conf_id, (_, energy) in by_energy:
            if all(abs(energy - e) > DISTINCT_ENERGY for e, _ in kept):
                kept.append((energy, conf_id))
        conf_ids = [conf_id for _, conf_id in kept]
    conf_ids = conf_ids[:n_conformers]
    numbers = [atom.GetAtomicNum() for atom in mol.GetAtoms()]
    out = []
    for conf_id in conf_ids:
        atoms = Atoms(numbers, positions=mol.GetConformer(conf_id).GetPositions())
        atoms.info["molecule"] = molecule.id
        out.append(atoms)
    return out


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation matrix (3, 3)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def _min_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min())


def place_members(members: list[Atoms], rng: np.random.Generator) -> np.ndarray:
    """Positions (n, 3) of the members joined without overlap: each member after the first is
    rotated at random and brought in along a random direction until its closest atom is
    ``uniform(CONTACT_RANGE)`` from the atoms already placed."""
    placed = members[0].positions - members[0].positions.mean(axis=0)
    for atoms in members[1:]:
        body = (atoms.positions - atoms.positions.mean(axis=0)) @ _rotation(rng).T
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        contact = rng.uniform(*CONTACT_RANGE)
        centre = placed.mean(axis=0)
        distance = (np.linalg.norm(placed - centre, axis=1).max()
                    + np.linalg.norm(body, axis=1).max() + contact + 1.0)
        while distance > 0:
            closer = distance - PLACEMENT_STEP
            if _min_distance(placed, body + centre + closer * direction) < contact:
                break
            distance = closer
        placed = np.concatenate([placed, body + centre + distance * direction])
    return placed


def embed_cluster(cluster: Cluster, library: Library, seed: int = 0) -> Atoms:
    """The cluster's members (first conformer each) placed by ``place_members``."""
    members = [embed_molecule(library.molecules[m], 1, seed)[0] for m in cluster.members]
    rng = np.random.default_rng([seed, zlib.crc32(cluster.id.encode())])
    positions = place_members(members, rng)
    atoms = Atoms(np.concatenate([m.numbers for m in members]), positions=positions)
    atoms.info["molecule"] = cluster.id
    return atoms


def embed_system(system_id: str, library: Library, n_conformers: int = 1,
                 seed: int = 0) -> list[Atoms]:
    """Conformers of a library molecule, or the one placement of a cluster, by id."""
    system = library.get(system_id)
    if isinstance(system, Cluster):
        return [embed_cluster(system, library, seed)]
    return embed_molecule(system, n_conformers, seed)
