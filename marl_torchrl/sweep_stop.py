"""Ctrl-C in a sweep whose jobs run in local worker processes (``marl-train -m hydra/launcher=joblib``).

The terminal sends SIGINT to its whole process group: the sweep process and the loky workers. Left alone,
the sweep process would abort joblib and kill the workers while their runs write checkpoints, and an idle
worker would die of it. Instead:

- the sweep process (:class:`SweepInterrupts`) takes the first SIGINT as "stop": it writes
  ``<sweep dir>/.stop``, says so in one line, and waits for its jobs; a second SIGINT stops it at once;
- a running job stops as a single run does (``faults.StopSignals``: a checkpoint of the current state) and
  returns its failure to the sweep, which exits 130;
- a job that starts after that finds ``.stop`` and returns at once (:func:`stopped`);
- a worker ignores SIGINT between jobs (:func:`between_jobs`).

The same sweep command with ``resume=auto`` then skips the finished jobs and continues the others; a new
sweep in the same dir first removes an old ``.stop`` (:func:`clear`). Other launchers keep Hydra's own
handling (their jobs live outside this process group). Nothing here imports torch.

>>> import tempfile; d = tempfile.mkdtemp()
>>> stopped(d), request_stop(d).name, stopped(d), clear(d), stopped(d)
(False, '.stop', True, None, False)
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

STOP_FILE = ".stop"
_SWEEP_PID: int | None = None  # set in the sweep process while SweepInterrupts is active
_JOB_HERE = False  # a job runs in the sweep process now (joblib with n_jobs=1): a SIGINT there stops it


def request_stop(sweep_dir: str | os.PathLike) -> Path:
    """Mark the sweep in ``sweep_dir`` as stopping: jobs that start from now on do not train."""
    path = Path(sweep_dir) / STOP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def stopped(sweep_dir: str | os.PathLike) -> bool:
    """Whether the sweep in ``sweep_dir`` was asked to stop."""
    return (Path(sweep_dir) / STOP_FILE).exists()


def clear(sweep_dir: str | os.PathLike) -> None:
    """Remove an earlier sweep's stop mark (a new sweep in the same dir starts its jobs)."""
    (Path(sweep_dir) / STOP_FILE).unlink(missing_ok=True)


def in_sweep_process() -> bool:
    """Whether this job runs inside the sweep process itself (Hydra's basic launcher), not in a worker."""
    return _SWEEP_PID == os.getpid()


class job_here:
    """Around a job that runs in the sweep process: a SIGINT outside its training loop stops it at once
    (``KeyboardInterrupt``); inside the loop the run's own handlers checkpoint first."""

    def __enter__(self):
        global _JOB_HERE
        _JOB_HERE = in_sweep_process()

    def __exit__(self, *exc):
        global _JOB_HERE
        _JOB_HERE = False


def between_jobs() -> None:
    """In a worker process: ignore SIGINT until the next job (its run installs its own handlers)."""
    if not in_sweep_process() and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class SweepInterrupts:
    """While active in the sweep process (``active=False``: does nothing), the first SIGINT marks the sweep
    stopping instead of raising; the second raises ``KeyboardInterrupt``. ``sweep_dir`` is set when the
    launcher starts (:meth:`launching`)."""

    def __init__(self, active: bool):
        self.active = active
        self.sweep_dir: Path | None = None
        self.requested = False
        self._old = None

    def launching(self, sweep_dir: str | os.PathLike) -> None:
        self.sweep_dir = Path(sweep_dir)
        clear(self.sweep_dir)
        if self.requested:  # a Ctrl-C before the launcher started
            request_stop(self.sweep_dir)

    def _handle(self, signum, frame) -> None:
        first, self.requested = not self.requested, True
        if self.sweep_dir is not None:
            request_stop(self.sweep_dir)
        if not first or _JOB_HERE:
            raise KeyboardInterrupt
        print("SIGINT: the running jobs checkpoint and stop, the others do not start; run the same command "
              "with resume=auto to continue (send it again to stop at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> "SweepInterrupts":
        global _SWEEP_PID
        _SWEEP_PID = os.getpid()
        if self.active and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        global _SWEEP_PID
        _SWEEP_PID = None
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None
