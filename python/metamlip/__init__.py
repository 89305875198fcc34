"""metamlip: machine-learning interatomic potentials meta-learned across levels of theory.

Units everywhere inside metamlip: energies in eV, lengths in Angstrom, forces in eV/Angstrom.
"""

__version__ = "0.1.0"
