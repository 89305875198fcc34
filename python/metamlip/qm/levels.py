"""Level-of-theory strings: parsing, validation and file names.

A level is a lower-case canonical string: ``gfn1-xtb``, ``gfn2-xtb`` (tblite), or
``<method>/<basis>`` for PySCF, where method is ``hf``, ``mp2`` or a DFT functional name
understood by PySCF's libxc interface (``pbe``, ``b3lyp``, ``wb97x``, ...).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

XTB_METHODS = {"gfn1-xtb": "GFN1-xTB", "gfn2-xtb": "GFN2-xTB"}
WAVEFUNCTION_METHODS = ("hf", "mp2")


class LevelError(ValueError):
    """A level string that cannot be used; the message names the bad part."""


@dataclass(frozen=True)
class Level:
    """A parsed level of theory.

    family: ``"xtb"``, ``"hf"``, ``"mp2"`` or ``"dft"``; method: the method or functional
    (lower case); basis: the PySCF basis name (lower case), ``None`` for xTB.
    """

    family: str
    method: str
    basis: str | None

    @property
    def name(self) -> str:
        """Canonical level string, e.g. ``hf/6-31g*``."""
        return self.method if self.basis is None else f"{self.method}/{self.basis}"

    @property
    def file_stem(self) -> str:
        """File-name form of the level: '/' becomes '_', '*' becomes 's' (``hf_6-31gs``)."""
        return self.name.replace("/", "_").replace("*", "s")


def parse_level(text: str) -> Level:
    """Parse and validate a level string (case-insensitive); LevelError names the bad part."""
    name = text.strip().lower()
    if not name:
        raise LevelError("empty level; expected e.g. 'gfn2-xtb', 'hf/sto-3g', 'b3lyp/6-31g*'")
    method, sep, basis = name.partition("/")
    if method in XTB_METHODS:
        if sep:
            raise LevelError(
                f"level '{text}': xTB method '{method}' takes no basis (got '{basis}')")
        return Level("xtb", method, None)
    if not sep or not basis:
        raise LevelError(f"level '{text}': missing basis, expected '{method}/<basis>'")
    if "/" in basis:
        raise LevelError(f"level '{text}': expected one '/', as in '<method>/<basis>'")
    _check_basis(text, basis)
    if method in WAVEFUNCTION_METHODS:
        return Level(method, method, basis)
    _check_functional(text, method)
    return Level("dft", method, basis)


def _check_basis(text: str, basis: str) -> None:
    from pyscf.gto import basis as pyscf_basis

    try:
        with warnings.catch_warnings():  # PySCF suggests basis-set-exchange for unknown names
            warnings.simplefilter("ignore", UserWarning)
            pyscf_basis.load(basis, "H")
    except (KeyError, RuntimeError):  # BasisNotFoundError is a RuntimeError
        raise LevelError(
            f"level '{text}': unknown basis '{basis}' (not a PySCF basis name)") from None


def _check_functional(text: str, method: str) -> None:
    from pyscf.dft import libxc

    try:
        libxc.parse_xc(method)
    except (KeyError, ValueError):
        raise LevelError(
            f"level '{text}': unknown method '{method}' (expected gfn1-xtb, gfn2-xtb, hf, mp2 "
            "or a PySCF DFT functional such as pbe, b3lyp, wb97x)"
        ) from None
