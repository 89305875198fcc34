"""metamlip::neighbor_list (C++ cell list) against the brute-force reference and ASE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list as ase_neighbor_list

from metamlip.ops import neighbor_list, neighbor_list_op, pair_vectors
from metamlip.ops.reference import neighbor_list_reference

from fixtures.structures import KINDS, Case, make_case, random_cases

N_CASES = 322  # 46 of each kind
CASES = random_cases(N_CASES, seed=20261124)


def as_tensors(case: Case, dtype: torch.dtype = torch.float64):
    positions = torch.tensor(case.positions, dtype=dtype)
    cell = None if case.cell is None else torch.tensor(case.cell, dtype=dtype)
    pbc = torch.tensor(case.pbc)
    batch = None if case.batch is None else torch.tensor(case.batch)
    return positions, cell, pbc, batch


def reference(*args, **kwargs):
    """The O(N^2) reference on one thread: its many small tensor operations are faster so,
    especially on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return neighbor_list_reference(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


def as_set(i, j, s) -> np.ndarray:
    """Rows (i, j, S0, S1, S2) sorted lexicographically: the pairs as a set."""
    rows = np.column_stack([np.asarray(i), np.asarray(j), np.asarray(s).reshape(-1, 3)]).astype(np.int64)
    return rows[np.lexsort(rows.T[::-1])] if len(rows) else rows.reshape(0, 5)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_equals_reference_and_ase(case: Case):
    positions, cell, pbc, batch = as_tensors(case)
    i, j, s = neighbor_list(positions, case.cutoff, cell, pbc, batch)
    assert i.dtype == j.dtype == s.dtype == torch.int64
    assert s.shape == (i.shape[0], 3)
    assert bool((i[1:] >= i[:-1]).all()), "pairs must be ordered by i"
    ours = as_set(i, j, s)
    reference_pairs = as_set(*reference(positions, case.cutoff, cell, pbc, batch))
    np.testing.assert_array_equal(ours, reference_pairs)
    if batch is not None:
        assert bool((batch[i] == batch[j]).all()), "pairs across molecules"
    elif not case.name.startswith("sparse"):  # ASE bins huge sparse cells very slowly
        ai, aj, a_s = ase_neighbor_list("ijS", case.to_ase(), case.cutoff, self_interaction=False)
        np.testing.assert_array_equal(ours, as_set(ai, aj, a_s))


@pytest.mark.parametrize("case", CASES[: 3 * len(KINDS)], ids=lambda c: c.name)
def test_half_list(case: Case):
    positions, cell, pbc, batch = as_tensors(case)
    i, j, s = neighbor_list(positions, case.cutoff, cell, pbc, batch, full_list=False)
    half = reference(positions, case.cutoff, cell, pbc, batch, full_list=False)
    np.testing.assert_array_equal(as_set(i, j, s), as_set(*half))
    full = as_set(*neighbor_list(positions, case.cutoff, cell, pbc, batch))
    both = as_set(torch.cat([i, j]), torch.cat([j, i]), torch.cat([s, -s]))
    np.testing.assert_array_equal(full, both)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["triclinic", "mixed", "batch"])
def test_distances_and_vectors(kind: str, dtype: torch.dtype):
    case = make_case(kind, seed=5, index=3)
    positions, cell, pbc, batch = as_tensors(case, dtype)
    i, j, s, d, v = neighbor_list_op(positions, case.cutoff, cell, pbc, batch, return_vectors=True)
    assert d.dtype == v.dtype == dtype and d.shape == i.shape and v.shape == (i.shape[0], 3)
    expected = pair_vectors(positions.double(), i, j, s, None if cell is None else cell.double(), batch)
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(v.double(), expected, rtol=tol, atol=tol)
    torch.testing.assert_close(d.double(), expected.norm(dim=1), rtol=tol, atol=tol)
    assert bool((d < case.cutoff).all())
    # float32 input: same pairs as the float64 search (the op works in float64 inside)
    ours = as_set(i, j, s)
    np.testing.assert_array_equal(ours, as_set(*neighbor_list(positions.double(), case.cutoff,
                                                              None if cell is None else cell.double(), pbc, batch)))


def _gradcheck_case() -> Case:
    """A small triclinic case with no pair within 1e-3 A of the cutoff (finite differences
    must not change the pair list)."""
    for index in range(100):
        case = make_case("thin", seed=11, index=index)
        if not 4 <= case.n_atoms <= 12:
            continue
        positions, cell, pbc, _ = as_tensors(case)
        _, _, _, d, _ = neighbor_list_op(positions, case.cutoff + 0.01, cell, pbc, return_vectors=True)
        if len(d) and float((d - case.cutoff).abs().min()) > 1e-3:
            return case
    raise AssertionError("no suitable case")


def test_gradcheck_positions_and_cell():
    case = _gradcheck_case()
    positions, cell, pbc, _ = as_tensors(case)
    positions.requires_grad_(True)
    cell.requires_grad_(True)

    def distances_and_vectors(x, h):
        _, _, _, d, v = neighbor_list_op(x, case.cutoff, h, pbc, return_vectors=True)
        return d, v

    d, v = distances_and_vectors(positions, cell)
    assert d.requires_grad and v.requires_grad and len(d) > 0
    assert torch.autograd.gradcheck(distances_and_vectors, (positions, cell))
    assert torch.autograd.gradgradcheck(distances_and_vectors, (positions, cell))


def test_deterministic_and_independent_of_threads():
    case = make_case("triclinic", seed=3, index=0)
    positions = torch.rand(2000, 3, dtype=torch.float64) * 25.0 - 3.0
    cell = torch.tensor(case.cell) * (25.0 / abs(np.linalg.det(case.cell)) ** (1 / 3))
    pbc = torch.tensor([True, True, True])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = neighbor_list_op(positions, 4.0, cell, pbc, return_vectors=True)
        torch.set_num_threads(max(2, threads))
        many = neighbor_list_op(positions, 4.0, cell, pbc, return_vectors=True)
        again = neighbor_list_op(positions, 4.0, cell, pbc, return_vectors=True)
    finally:
        torch.set_num_threads(threads)
    for a, b, c in zip(one, many, again):
        assert torch.equal(a, b) and torch.equal(b, c)


def test_large_outputs_on_recycled_blocks():
    """Outputs of 2 MB and more live on recycled huge-page blocks (csrc/cpu/memory.cpp): they
    equal vesin's pairs, a live result is never overwritten by the next call, and a freed
    result's blocks, reused, give the same pairs again."""
    vesin = pytest.importorskip("vesin")
    rng = np.random.default_rng(7)
    length = (6000 / 0.1003) ** (1 / 3)  # water's atom density: ~315k pairs at 5 A
    positions = torch.from_numpy(rng.random((6000, 3)) * length)
    cell = torch.eye(3, dtype=torch.float64) * length
    pbc = torch.tensor([True, True, True])
    first = neighbor_list_op(positions, 5.0, cell, pbc, return_vectors=True)
    assert first[0].nbytes >= 2 << 20
    kept = [t.clone() for t in first]
    vi, vj, vs = vesin.NeighborList(cutoff=5.0, full_list=True).compute(
        points=positions.numpy(), box=cell.numpy(), periodic=True, quantities="ijS")
    np.testing.assert_array_equal(as_set(*first[:3]), as_set(vi, vj, vs))
    second = neighbor_list_op(positions + 0.5, 5.0, cell, pbc, return_vectors=True)
    for a, b in zip(first, second):
        assert a.data_ptr() != b.data_ptr()
    for a, b in zip(first, kept):
        assert torch.equal(a, b)
    del first, second
    again = neighbor_list_op(positions, 5.0, cell, pbc, return_vectors=True)
    for a, b in zip(again, kept):
        assert torch.equal(a, b)


def test_empty_inputs():
    positions = torch.zeros(0, 3, dtype=torch.float64)
    for cell, pbc in [(None, None), (torch.eye(3) * 5.0, torch.tensor([True, True, True]))]:
        i, j, s, d, v = neighbor_list_op(positions, 3.0, cell, pbc, return_vectors=True)
        assert i.shape == (0,) and j.shape == (0,) and s.shape == (0, 3) and d.shape == (0,) and v.shape == (0, 3)
    i, j, s = neighbor_list(torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]]), 3.0)
    assert i.numel() == 0 and s.shape == (0, 3)


def test_own_images_in_tiny_cell():
    """One atom in a 1 A cubic cell with cutoff 1.5: its 18 images within 1.5 A (6 faces, 12 edges)."""
    i, j, s = neighbor_list(torch.zeros(1, 3, dtype=torch.float64), 1.5, torch.eye(3, dtype=torch.float64),
                            torch.tensor([True, True, True]))
    assert len(i) == 18 and bool((i == 0).all() and (j == 0).all())
    assert bool((s.abs().sum(1) > 0).all())


def test_huge_sparse_cell_falls_back_to_coarse_grid():
    """Far-apart atoms would need ~1e24 bins of the cutoff's size: the grid is coarsened."""
    positions = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1e8, 1e8, 1e8], [1e8, 1e8, 1e8 + 2.0]],
                             dtype=torch.float64)
    i, j, s = neighbor_list(positions, 2.5)
    assert as_set(i, j, s)[:, :2].tolist() == [[0, 1], [1, 0], [2, 3], [3, 2]]
    cell = torch.eye(3, dtype=torch.float64) * 1e9
    i, j, s = neighbor_list(positions, 2.5, cell, torch.tensor([True, True, True]))
    assert len(i) == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(positions=torch.tensor([[0.0, 0.0, float("nan")]])), "NaN"),
        (dict(cutoff=0.0), "cutoff"),
        (dict(cutoff=-1.0), "cutoff"),
        (dict(cell=torch.tensor([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1.0]])), "singular"),
        (dict(cell=torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 1.0]])), "singular"),
        (dict(cell=None), "no cell"),
        (dict(cell=torch.eye(3) * 1e-4), "cutoff"),
        (dict(batch=torch.tensor([0, -1])), "batch"),
        (dict(batch=torch.tensor([0])), "batch"),
        (dict(positions=torch.zeros(2, 2)), "positions"),
        (dict(pbc=torch.tensor([True, True])), "pbc"),
    ],
)
def test_errors(kwargs, message):
    args = dict(
        positions=torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]], dtype=torch.float64),
        cutoff=2.0,
        cell=torch.eye(3, dtype=torch.float64) * 3.0,
        pbc=torch.tensor([True, True, True]),
        batch=None,
    )
    args.update(kwargs)
    with pytest.raises((RuntimeError, ValueError), match=message):
        neighbor_list(**args)


def test_torchscript():
    case = make_case("batch", seed=2, index=4)
    positions, cell, pbc, batch = as_tensors(case)
    scripted = torch.jit.script(neighbor_list_op)
    for a, b in zip(scripted(positions, case.cutoff, cell, pbc, batch, True, True),
                    neighbor_list_op(positions, case.cutoff, cell, pbc, batch, True, True)):
        assert torch.equal(a, b)
    scripted_list = torch.jit.script(neighbor_list)
    for a, b in zip(scripted_list(positions, case.cutoff, cell, pbc, batch),
                    neighbor_list(positions, case.cutoff, cell, pbc, batch)):
        assert torch.equal(a, b)
