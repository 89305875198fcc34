"""Configurations at many levels of theory: readers, writers, validation, self energies, batches."""

from metamlip.data.configuration import Configuration, Dataset
from metamlip.data.errors import DataError
from metamlip.data.readers import canonical_level, read_dataset, read_extxyz, read_hdf5, read_npz
from metamlip.data.self_energies import fit_self_energies
from metamlip.data.split import split_indices
from metamlip.data.validation import validate_configuration
from metamlip.data.writers import write_extxyz, write_hdf5

__all__ = [
    "Configuration",
    "DataError",
    "Dataset",
    "canonical_level",
    "fit_self_energies",
    "read_dataset",
    "read_extxyz",
    "read_hdf5",
    "read_npz",
    "split_indices",
    "validate_configuration",
    "write_extxyz",
    "write_hdf5",
]
