"""The package's layers point one way: data -> nn -> train -> meta -> workflows -> cli.

Every `import metamlip.X` / `from metamlip.X import` in a module of layer L must name a layer
below L, or L itself. deploy and the engine integrations need no training code.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "python" / "metamlip"

# Rank of each top-level module or subpackage; a module may import only lower ranks or its own
# package. Packages of equal rank may not import each other.
RANKS = {
    "atomic": 0, "pretrained": 0, "ops": 0,
    "data": 1, "qm": 1,
    "nn": 2,
    "train": 3, "deploy": 3,
    "meta": 4, "openmm": 4, "ase": 4, "lammps": 4,
    "workflows": 5,
    "cli": 6,
}
ENTRY_POINTS = {"__main__.py"}  # `python -m metamlip.train` runs the CLI by design


def package_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names if node.module == "metamlip"]
        for name in names:
            parts = name.split(".")
            if parts[0] == "metamlip" and len(parts) > 1 and parts[1] in RANKS:
                found.add(parts[1])
    return found


def modules() -> list[Path]:
    """Every module but the package's own __init__ and the entry points."""
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py" and p.name not in ENTRY_POINTS)


def test_every_package_has_a_rank():
    names = {package_of(p) for p in modules()}
    assert names <= set(RANKS), f"give these a layer in RANKS: {sorted(names - set(RANKS))}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_points_up_or_sideways(path):
    own = package_of(path)
    bad = sorted(p for p in imported_packages(path) if p != own and RANKS[p] >= RANKS[own])
    assert not bad, f"{path.relative_to(PACKAGE)} ({own}, layer {RANKS[own]}) imports {', '.join(f'{b} (layer {RANKS[b]})' for b in bad)}"


def test_the_checker_sees_a_back_edge(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from metamlip.meta import strategies\nimport metamlip.cli.train\nfrom metamlip import workflows\n")
    assert imported_packages(module) == {"meta", "cli", "workflows"}
