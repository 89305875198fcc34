"""Reference data generation: sampling configurations and labelling them at QM levels of theory.

Modules: ``levels`` (level strings), ``calculators`` (energy and forces at one level),
``sampling`` (xTB molecular dynamics), ``extxyz`` (deterministic atomic file writes),
``labelling`` (resumable chunked runner), ``summary`` (dataset statistics).
Units: eV and Angstrom; forces in eV/Angstrom.
"""
