"""Pre-trained models shipped inside the package, loadable as ``pretrained:NAME``.

Each model is a checkpoint ``NAME.ckpt`` in this directory with its model card ``NAME.md``
(training data, levels, strategy, hyperparameters, validation errors per level).
``metamlip-train --list-pretrained`` lists them; ``--init pretrained:NAME`` fine-tunes one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PREFIX = "pretrained:"


class PretrainedError(LookupError):
    """An unknown pre-trained model name."""


def _directory() -> Path:
    return Path(str(resources.files(__name__)))


def available() -> list[str]:
    """Names of the shipped models."""
    return sorted(p.stem for p in _directory().glob("*.ckpt"))


def checkpoint_path(name: str) -> Path:
    path = _directory() / f"{name}.ckpt"
    if not path.exists():
        known = ", ".join(available()) or "none"
        raise PretrainedError(f"no pre-trained model named {name!r} (shipped: {known})")
    return path


def model_card(name: str) -> str:
    card = _directory() / f"{name}.md"
    checkpoint_path(name)
    return card.read_text() if card.exists() else f"{name}: no model card"


def summary(name: str) -> str:
    """The first line of the model card after its title (one-line description)."""
    lines = [line.strip() for line in model_card(name).splitlines() if line.strip() and not line.startswith("#")]
    return lines[0] if lines else ""


def resolve(spec: str) -> Path:
    """A checkpoint path from ``pretrained:NAME`` or a file path."""
    if spec.startswith(PREFIX):
        return checkpoint_path(spec[len(PREFIX) :])
    return Path(spec)
