"""Faults at run time: what stops a run, how it says so in one line, and the exit status it ends with.

A bad config is a :class:`~marl_torchrl.registry.ConfigError` (exit 2, before anything is built). Once
training runs, a fault stops it at a safe point with the last good state on disk:

- :class:`RunInterrupted`: SIGINT or SIGTERM; a checkpoint of the current state was written (exit 130 / 143);
- :class:`NonFiniteError`: a non-finite loss, gradient norm or parameter (exit 3); nothing non-finite
  is ever written, the last finite checkpoint is named;
- :class:`WriteError`: a checkpoint or a log could not be written (disk full, ...) (exit 4); the
  previous checkpoint is intact.

:func:`newest_checkpoint` picks the checkpoint a ``resume=<run dir>`` continues from. Nothing here
imports torch.

>>> NonFiniteError("train/loss", float("nan"), iteration=7, checkpoint=None).exit_code
3
>>> str(NonFiniteError("train/loss", float("nan"), iteration=7, checkpoint=None))
'non-finite train/loss (nan) at iteration 7; no checkpoint was written before it'
"""
from __future__ import annotations

import re
import signal
import sys
import threading
import zipfile
from pathlib import Path


class RunFault(Exception):
    """A fault that stopped a running run; ``exit_code`` is the process's exit status."""

    exit_code = 1


class RunInterrupted(RunFault):
    """SIGINT or SIGTERM: the run stopped at a safe point and wrote ``checkpoint``."""

    def __init__(self, signum: int, frames: int, checkpoint: Path | None):
        self.signum, self.frames, self.checkpoint = signum, frames, checkpoint
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        saved = f"saved {checkpoint}" if checkpoint else "nothing was saved"
        super().__init__(f"interrupted by {name} at {frames} frames; {saved}")


class NonFiniteError(RunFault):
    """A non-finite training metric or parameter; ``checkpoint`` is the last finite one written (or None)."""

    exit_code = 3

    def __init__(self, metric: str, value: float, iteration: int, checkpoint: Path | None):
        self.metric, self.value, self.iteration, self.checkpoint = metric, value, iteration, checkpoint
        last = f"the last finite checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written before it"
        super().__init__(f"non-finite {metric} ({value}) at iteration {iteration}; {last}")


class WriteError(RunFault, OSError):
    """A checkpoint or log write failed (disk full, unwritable, ...)."""

    exit_code = 4


class StopSignals:
    """While active, the first SIGINT or SIGTERM only asks the run to stop (``requested`` holds its number,
    and a line on stderr says so); a second one raises ``KeyboardInterrupt`` at once. Outside the main
    thread (where Python cannot take signals) it does nothing.

    >>> import os
    >>> with StopSignals() as stop:
    ...     os.kill(os.getpid(), signal.SIGTERM)
    ...     stop.requested == signal.SIGTERM
    True
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, quiet: bool = True):
        self.requested: int | None = None
        self.quiet = quiet
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signum
        if not self.quiet:
            print(f"{signal.Signals(signum).name}: stopping at the end of this iteration and saving a checkpoint "
                  "(send it again to exit at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self._old = {}


_CHECKPOINT = re.compile(r"checkpoint_(\d+)\.pt")


def is_complete(path: Path) -> bool:
    """A checkpoint file that was written to its end (``torch.save`` writes a zip archive, whose directory
    comes last: a cut-off write has none).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "cut.pt"; _ = p.write_bytes(b"PK\\x03\\x04 cut off")
    >>> is_complete(p)
    False
    """
    return path.is_file() and zipfile.is_zipfile(path)


def newest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint in ``<run_dir>/models`` (``checkpoint_<frames>.pt`` or
    ``final_model.pt``): the last one written, then the one with the most frames; None when there is none.

    >>> import tempfile, zipfile
    >>> d = Path(tempfile.mkdtemp()); (d / "models").mkdir()
    >>> for n in (100, 300):
    ...     zipfile.ZipFile(d / "models" / f"checkpoint_{n}.pt", "w").close()
    >>> _ = (d / "models" / "checkpoint_500.pt").write_bytes(b"cut off")   # a write that was cut off
    >>> newest_checkpoint(d).name
    'checkpoint_300.pt'
    """
    models = Path(run_dir) / "models"
    if not models.is_dir():
        return None

    def frames(p: Path) -> float:
        m = _CHECKPOINT.fullmatch(p.name)
        return int(m.group(1)) if m else float("inf")

    found = [p for p in models.glob("*.pt") if (p.name == "final_model.pt" or _CHECKPOINT.fullmatch(p.name))
             and is_complete(p)]
    return max(found, key=lambda p: (p.stat().st_mtime_ns, frames(p)), default=None)
