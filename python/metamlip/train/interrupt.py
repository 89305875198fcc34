"""Ctrl-C during training: finish the current step, write a resumable checkpoint, then stop."""

from __future__ import annotations

import signal
import threading
from pathlib import Path


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT after writing `checkpoint` (continue with --resume)."""

    def __init__(self, checkpoint: Path) -> None:
        super().__init__(str(checkpoint))
        self.checkpoint = checkpoint


class Interrupt:
    """Context manager: the first SIGINT only sets `requested` (the loop saves and raises
    TrainingInterrupted at the next step boundary); a second one interrupts at once.

    Inactive (plain KeyboardInterrupt) outside the main thread and when `enabled` is False
    (data-parallel runs, whose processes could not agree on the step to stop at).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous = None

    def __enter__(self) -> "Interrupt":
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
