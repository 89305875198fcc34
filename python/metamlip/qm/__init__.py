"""Reference data generation: sampling configurations and labelling them at QM levels of theory.

Modules: ``levels`` (level strings), ``calculators`` (energy and forces at one level),
``sampling`` (xTB molecular dynamics), ``normal_modes`` (ANI normal-mode sampling),
``extxyz`` (deterministic atomic file writes), ``labelling`` (resumable chunked runner),
``summary`` (dataset statistics); for the foundation set: ``library`` (molecules and clusters),
``embedding`` (RDKit 3D structures), ``pool`` (geometries per system), ``manifest`` and
``campaign`` (sharded, resumable labelling over the library), ``cards`` (data cards, merging).
Units: eV and Angstrom; forces in eV/Angstrom.
"""
