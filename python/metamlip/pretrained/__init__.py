"""Pre-trained models shipped inside the package, loadable as ``pretrained:NAME``.

Each model is a checkpoint ``NAME.ckpt`` in this directory with its model card ``NAME.md``
(training data, levels, strategy, hyperparameters, validation errors per level).
``pretrained:default`` names the recommended starting point for fine-tuning (ALIASES says
which shipped model that is). ``metamlip-train --list-pretrained`` lists them; ``--init
pretrained:NAME`` fine-tunes one; metamlip-eval, metamlip-export and
``metamlip.deploy.load_model`` accept the same names.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PREFIX = "pretrained:"
DEFAULT = "default"
ALIASES = {DEFAULT: "hipnn-meta-chno-ts2"}  # alias -> shipped model; only the target changes when a better one ships


class PretrainedError(LookupError):
    """An unknown pre-trained model name."""


def _directory() -> Path:
    return Path(str(resources.files(__name__)))


def available() -> list[str]:
    """Names of the shipped models (aliases not included)."""
    return sorted(p.stem for p in _directory().glob("*.ckpt"))


def known_names() -> str:
    """Every accepted name, for error messages: aliases with their targets, then the models."""
    aliases = [f"{alias} (= {target})" for alias, target in ALIASES.items()]
    return ", ".join(aliases + available()) or "none"


def canonical(name: str) -> str:
    """The shipped model a name means: an alias's target, or the name itself if it is shipped."""
    target = ALIASES.get(name, name)
    if not (_directory() / f"{target}.ckpt").exists():
        raise PretrainedError(f"no pre-trained model named {name!r} (shipped: {known_names()})")
    return target


def checkpoint_path(name: str) -> Path:
    return _directory() / f"{canonical(name)}.ckpt"


def model_card(name: str) -> str:
    target = canonical(name)
    card = _directory() / f"{target}.md"
    return card.read_text() if card.exists() else f"{target}: no model card"


def summary(name: str) -> str:
    """The first line of the model card after its title (one-line description)."""
    lines = [line.strip() for line in model_card(name).splitlines() if line.strip() and not line.startswith("#")]
    return lines[0] if lines else ""


def is_pretrained(spec: str | Path) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def canonical_spec(spec: str) -> str:
    """``pretrained:default`` -> ``pretrained:<its target>``; other specs unchanged. A run records
    this, so a later change of the alias cannot silently change what a resumed run starts from."""
    return PREFIX + canonical(spec[len(PREFIX) :]) if is_pretrained(spec) else spec


def resolve(spec: str | Path) -> Path:
    """A checkpoint path from ``pretrained:NAME`` (aliases allowed) or a file path."""
    if is_pretrained(spec):
        return checkpoint_path(str(spec)[len(PREFIX) :])
    return Path(spec)
