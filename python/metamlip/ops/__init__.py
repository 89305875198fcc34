"""Neighbour search and HIP-NN pair sums: C++ ops (``torch.ops.metamlip``) and their references.

Importing this package loads the op library once (``load_library``), so that
``torch.ops.metamlip.*`` exist before any module using them is compiled with TorchScript.
"""

from metamlip.ops._library import OpLibraryError, library_path, load_library

load_library()

from metamlip.ops.neighbors import neighbor_list, neighbor_list_op, pair_vectors  # noqa: E402

__all__ = [
    "OpLibraryError",
    "library_path",
    "load_library",
    "neighbor_list",
    "neighbor_list_op",
    "pair_vectors",
]
