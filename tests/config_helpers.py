"""Training configs for the tests: a small base config with per-test overrides, as YAML."""

import json
from functools import partial
from pathlib import Path

import yaml


def write_config_with(base: dict, path: Path, **sections: dict) -> str:
    """Writes `base` with `sections` ({key: value} per section) merged in; returns the path."""
    config = json.loads(json.dumps(base))
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    Path(path).write_text(yaml.safe_dump(config))
    return str(path)


def config_writer(base: dict):
    """write_config(path, **sections) for one base config."""
    return partial(write_config_with, base)
