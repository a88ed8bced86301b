"""Stopping a command is a normal end: Ctrl-C (SIGINT) or SIGTERM gives one line and the shell's exit status.

Nothing is lost by stopping: finished runs are in the store, a run in progress resumes from its last checkpoint
(``fit`` writes one after every epoch), and a claim file goes with the process that held it. What stopping needs
is the words: which run was stopped in which epoch, and where the same command will pick it up.

* :func:`terminate_raises` makes SIGTERM (and SIGINT) raise :class:`Interrupted`, so both unwind the same way
  (``finally`` blocks run: claim files go, atomic writes leave no half file), and remembers the stop
  (:func:`pending`): an error a library makes of the interruption is still a stop.
* The store turns an interruption during training into :class:`TrainingInterrupted` (run, epoch, checkpoint).
* The command line prints :func:`describe`'s line and exits :func:`exit_status` (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
from typing import Iterator


class Interrupted(KeyboardInterrupt):
    """A stop by a signal; ``message`` says what was stopped (default: nothing in progress)."""

    def __init__(self, signal_number: int = signal.SIGINT, message: str | None = None):
        super().__init__(message)
        self.signal_number = signal_number
        self.message = message or "interrupted; every finished run is stored: the same command goes on from there"


class TrainingInterrupted(Interrupted):
    """A run stopped in ``epoch`` (1-based, the epoch in progress); its checkpoint holds ``resumes_from`` epochs."""

    def __init__(self, run: str, epoch: int, resumes_from: int, signal_number: int = signal.SIGINT):
        self.run, self.epoch, self.resumes_from = run, epoch, resumes_from
        super().__init__(signal_number, f"interrupted in epoch {epoch} of {run}; the same command resumes from "
                                        f"epoch {resumes_from}")


def signal_of(stop: BaseException) -> int:
    """The signal behind ``stop``: its own, or SIGINT for Python's plain KeyboardInterrupt."""
    return getattr(stop, "signal_number", signal.SIGINT)


def describe(stop: BaseException) -> str:
    return stop.message if isinstance(stop, Interrupted) else Interrupted().message


def exit_status(stop: BaseException) -> int:
    """What a shell reports for a process ended by the signal: 128 + its number (130 SIGINT, 143 SIGTERM)."""
    return 128 + signal_of(stop)


_PENDING: list[int] = []  # the signals that stopped this process; a stop is final, so never cleared


def _raise_interrupted(signal_number: int, frame) -> None:
    _PENDING.append(signal_number)
    raise Interrupted(signal_number)


def pending() -> int | None:
    """The signal that stopped this process, if one did: library code (torch.save, a DataLoader) may turn the
    KeyboardInterrupt into an error of its own, and the caller must still see a stop, not a failure."""
    return _PENDING[0] if _PENDING else None


def terminate_raises(sigint: bool = True) -> contextlib.AbstractContextManager:
    """Within the block, SIGTERM (and SIGINT, unless ``sigint`` is False) raise :class:`Interrupted`."""
    return signal_handlers(_raise_interrupted, (signal.SIGTERM, signal.SIGINT) if sigint else (signal.SIGTERM,))


@contextlib.contextmanager
def signal_handlers(handler, numbers) -> Iterator[None]:
    """``handler`` for the signals ``numbers`` within the block, the earlier handlers restored after it."""
    earlier = {number: signal.signal(number, handler) for number in numbers}
    try:
        yield
    finally:
        for number, previous in earlier.items():
            signal.signal(number, previous)


def leave_sigint_to_parent() -> None:
    """A sweep's worker processes ignore SIGINT: a terminal's Ctrl-C reaches the whole process group, and the parent
    relays the stop to each worker as SIGTERM, which stops the worker's run as it stops the parent's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
