"""Hydra launchers for ``marl-train -m``: which extra each one needs, and how a sweep learns which jobs failed.

The basic launcher comes with Hydra; the others are plugins, installed by an extra of this package::

    hydra/launcher=joblib                         sweep extra  (local processes, joblib/loky)
    hydra/launcher=submitit_local|submitit_slurm  sweep extra  (submitit: local processes or Slurm jobs)
    hydra/launcher=ray|ray_aws                    ray extra    (a local Ray or an existing Ray cluster)

A launcher whose plugin is missing is refused before Hydra starts, in one line (Hydra would print a
traceback ending in "Could not find 'hydra/launcher/joblib'"):

>>> check_launcher(["-m", "hydra/launcher=basic", "seed=0,1"])  # Hydra's own: nothing to check
>>> missing_extra("no_such_launcher") is None  # not ours to judge: Hydra reports unknown launchers
True

A job that fails on a bad config or a run fault prints its one line and *returns* a :class:`JobFailure`
(raising would stop the other jobs of an in-process sweep). Each launcher hands its jobs' return values
back to the sweep process, in that process or from loky workers, submitit jobs or Ray tasks;
:func:`failed_jobs` collects them there, so the sweep exits with the failed status whatever launched it.

Nothing here imports torch or a launcher plugin.
"""
from __future__ import annotations

import importlib.util
import os
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from marl_torchrl.config.store import override_value
from marl_torchrl.registry import ConfigError

# launcher (the hydra/launcher option) -> (extra of this package, modules it needs)
LAUNCHER_EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "joblib": ("sweep", ("hydra_plugins.hydra_joblib_launcher", "joblib")),
    "submitit_local": ("sweep", ("hydra_plugins.hydra_submitit_launcher", "submitit")),
    "submitit_slurm": ("sweep", ("hydra_plugins.hydra_submitit_launcher", "submitit")),
    "ray": ("ray", ("hydra_plugins.hydra_ray_launcher", "ray")),
    "ray_aws": ("ray", ("hydra_plugins.hydra_ray_launcher", "ray")),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module masked in sys.modules
        return False


def missing_extra(launcher: str) -> str | None:
    """Why ``hydra/launcher=<launcher>`` cannot run here (the extra to install), or None.

    >>> missing_extra("basic") is None
    True
    """
    if launcher not in LAUNCHER_EXTRAS:
        return None
    extra, modules = LAUNCHER_EXTRAS[launcher]
    if all(_installed(m) for m in modules):
        return None
    return f'hydra/launcher={launcher} needs the {extra} extra: pip install -e ".[{extra}]"'


def launcher_of(argv: Iterable[str]) -> str | None:
    """The launcher a command line asks for (the last ``hydra/launcher=`` wins), or None.

    >>> launcher_of(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1"])
    'joblib'
    >>> launcher_of(["seed=0"]) is None
    True
    """
    return override_value(argv, "hydra/launcher")


def check_launcher(argv: Iterable[str]) -> None:
    """Raise :class:`ConfigError` if the command line's launcher needs an extra that is not installed."""
    launcher = launcher_of(argv)
    reason = missing_extra(launcher) if launcher else None
    if reason:
        raise ConfigError(reason)


@dataclass(frozen=True)
class JobFailure:
    """What a failed sweep job returns: its exit status, its one line, and where that line was printed."""

    status: int
    line: str
    printed_to: tuple | None = None


def _stderr_id() -> tuple | None:
    """This process's stderr as (host, device, inode): the same for jobs that write to our terminal."""
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return socket.gethostname(), st.st_dev, st.st_ino


def job_failed(status: int, line: str) -> JobFailure:
    """Print a failed job's line (the job's stderr: the terminal, or a launcher's log file) and return it
    for the sweep process."""
    print(line, file=sys.stderr, flush=True)
    return JobFailure(status, line, _stderr_id())


def _collect(results: Iterable, failed: list[JobFailure]) -> None:
    from hydra.core.utils import JobStatus

    here = _stderr_id()
    for result in results:
        value = getattr(result, "_return_value", None)
        if getattr(result, "status", None) != JobStatus.COMPLETED or not isinstance(value, JobFailure):
            continue
        failed.append(value)
        if value.printed_to != here:  # e.g. submitit: the job wrote its line to its log file
            print(value.line, file=sys.stderr, flush=True)


@contextmanager
def failed_jobs(launching: Callable[[str], None] | None = None) -> Iterator[list[JobFailure]]:
    """While open, every launcher Hydra instantiates in this process reports its jobs' failures to the
    list it yields (each sweeper gets its launcher from ``Plugins.instantiate_launcher``); ``launching``
    is told the sweep dir before each launch."""
    from hydra.core.plugins import Plugins

    failed: list[JobFailure] = []
    instantiate = Plugins.instantiate_launcher

    def instantiate_and_watch(self, *args, **kwargs):
        launcher = instantiate(self, *args, **kwargs)
        launch = launcher.launch

        def launch_and_collect(job_overrides, initial_job_idx):
            if launching is not None:
                launching(str(launcher.config.hydra.sweep.dir))
            results = launch(job_overrides, initial_job_idx)
            _collect(results, failed)
            return results

        launcher.launch = launch_and_collect
        return launcher

    Plugins.instantiate_launcher = instantiate_and_watch
    try:
        yield failed
    finally:
        Plugins.instantiate_launcher = instantiate
