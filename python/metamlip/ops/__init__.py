"""Neighbour search and HIP-NN pair sums: C++ ops (``torch.ops.metamlip``) and their references."""

from metamlip.ops._library import OpLibraryError, library_path, load_library
from metamlip.ops.neighbors import neighbor_list, pair_vectors

__all__ = ["OpLibraryError", "library_path", "load_library", "neighbor_list", "pair_vectors"]
