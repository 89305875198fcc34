"""What `--resume` checks: the run in last.ckpt was made with this config and these data.

A trainer stores its config and a fingerprint of its data (levels, frame count, content hash)
in every checkpoint; on resume both are compared and any difference is refused, naming the key.
Keys in RESUMABLE_KEYS may change (README, "metamlip-train").
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from metamlip.data.configuration import Configuration
from metamlip.train.config import ConfigError

# Keys that may differ between a run and its resumption: how long to go on, how often to save,
# where to run, and where the files are (their content is checked by the fingerprint).
RESUMABLE_KEYS = frozenset(
    [
        "out",
        "data.files",
        *(f"{section}.{key}" for section in ("training", "pretrain") for key in ("max_epochs", "patience", "patience_steps", "checkpoint_every", "progress", "device")),
    ]
)


def data_fingerprint(*parts: Sequence[Configuration]) -> dict[str, Any]:
    """Levels, number of frames and a SHA-256 of every frame's elements, positions, level and labels."""
    digest = hashlib.sha256()
    levels: dict[str, None] = {}
    count = 0
    for part in parts:
        for c in part:
            levels[c.level] = None
            count += 1
            digest.update(c.level.encode() + b"\0")
            digest.update(np.ascontiguousarray(c.numbers, dtype=np.int64).tobytes())
            digest.update(np.ascontiguousarray(c.positions, dtype=np.float64).tobytes())
            digest.update(np.float64(np.nan if c.energy is None else c.energy).tobytes())
            if c.forces is not None:
                digest.update(np.ascontiguousarray(c.forces, dtype=np.float64).tobytes())
            if c.cell is not None:
                digest.update(np.ascontiguousarray(c.cell, dtype=np.float64).tobytes())
        digest.update(b"|")  # a frame moved from one part (training) to another (validation) counts
    return {"levels": list(levels), "n_frames": count, "sha256": digest.hexdigest()}


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_differences(saved: dict[str, Any], current: dict[str, Any], allowed: Iterable[str] = RESUMABLE_KEYS) -> list[str]:
    """Keys (section.key) whose values differ; keys absent from either side are not compared."""
    old, new = _flatten(saved), _flatten(current)
    allowed = set(allowed)
    return [key for key in new if key in old and key not in allowed and old[key] != new[key]]


def check_resumable(path: Path, payload: dict[str, Any], config: dict[str, Any], fingerprint: dict[str, Any]) -> None:
    """Raise ConfigError naming the first key (or data property) that differs from the saved run."""
    changed = config_differences(payload.get("config") or {}, config)
    if changed:
        old, new = _flatten(payload["config"]), _flatten(config)
        key = changed[0]
        more = f" (and {', '.join(changed[1:])})" if len(changed) > 1 else ""
        raise ConfigError(
            f"{path}: cannot resume: {key} is {new[key]!r} now but was {old[key]!r} in the run being resumed{more}; "
            f"only {', '.join(sorted(RESUMABLE_KEYS))} may change on resume (or start a new run in another --out)"
        )
    saved = (payload.get("extra") or {}).get("data")
    if saved is None:  # written before fingerprints existed
        return
    for key, what in (("levels", "levels of theory"), ("n_frames", "number of frames"), ("sha256", "content")):
        if saved.get(key) != fingerprint.get(key):
            detail = "" if key == "sha256" else f": {fingerprint.get(key)!r} now, {saved.get(key)!r} in the run being resumed"
            raise ConfigError(
                f"{path}: cannot resume: the training data differ from the run being resumed ({what}{detail}); "
                "resume with the same data or start a new run in another --out"
            )
