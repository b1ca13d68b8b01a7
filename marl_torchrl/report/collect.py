"""Finding and reading run dirs for ``marl-report``: a run dir is a folder holding ``configs/hparams.json``
or ``training_log.csv``; a sweep dir holds run dirs at any depth. Unfinished runs (no
``models/final_model.pt``) and broken ones (hparams or log missing/unreadable, no metric values) are
returned as ``(dir, why)`` skips rather than raising.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_fake_run(d / "r0", "vdn", "matrix", "two_step", 0, [(32, 1.0), (64, 2.0)])
>>> runs, skipped = collect_runs([d], "eval/ep_reward")
>>> [(r.algorithm, r.task, r.final) for r in runs], skipped
([('vdn', 'matrix/two_step', 2.0)], [])
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from marl_torchrl.plots import read_log

__all__ = ["Run", "ReportError", "find_run_dirs", "load_run", "collect_runs", "write_fake_run"]


class ReportError(Exception):
    """A path given to ``marl-report`` that does not exist or holds no runs (``error:`` line, exit 2).

    >>> str(ReportError("x"))
    'x'
    """


@dataclass
class Run:
    """One finished run's metric: ``frames``/``seconds``/``values`` at the rows where the metric is set.

    >>> r = Run("d", "vdn", "two_step", 0, np.array([1.0]), np.array([0.5]), np.array([3.0]))
    >>> r.final
    3.0
    """

    path: str
    algorithm: str
    task: str
    seed: int | None
    frames: np.ndarray
    seconds: np.ndarray
    values: np.ndarray

    @property
    def final(self) -> float:
        """The last non-empty value of the metric."""
        return float(self.values[-1])


def find_run_dirs(path: str | Path) -> list[Path]:
    """The run dirs at or below ``path``, sorted.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "a" / "configs").mkdir(parents=True); _ = (d / "a" / "configs" / "hparams.json").write_text("{}")
    >>> [p.name for p in find_run_dirs(d)]
    ['a']
    """
    path = Path(path)
    found = {p.parent.parent for p in path.rglob("hparams.json") if p.parent.name == "configs"}
    found |= {p.parent for p in path.rglob("training_log.csv")}
    return sorted(found)


def load_run(run_dir: str | Path, metric: str) -> Run | str:
    """Read a run dir into a :class:`Run`, or return why it is skipped.

    >>> load_run("/nonexistent/run", "eval/ep_reward")
    'missing configs/hparams.json'
    """
    run_dir = Path(run_dir)
    hp_path = run_dir / "configs" / "hparams.json"
    if not hp_path.is_file():
        return "missing configs/hparams.json"
    try:
        hp = json.loads(hp_path.read_text())
        algorithm = str(hp["algorithm"]["name"])
        env = hp["env"]
        task = f"{env['family']}/{env['task']}" if env.get("family") else str(env["task"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable configs/hparams.json ({type(err).__name__}: {err})"
    if not (run_dir / "models" / "final_model.pt").is_file():
        return "unfinished (no models/final_model.pt)"
    log_path = run_dir / "training_log.csv"
    if not log_path.is_file():
        return "missing training_log.csv"
    try:
        log = read_log(log_path)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"unreadable training_log.csv ({type(err).__name__}: {err})"
    if metric not in log or "frames" not in log:
        return f"training_log.csv has no {metric!r} column" if "frames" in log else "training_log.csv has no 'frames'"
    values = log[metric]
    seconds = log.get("time/elapsed_s", np.full(len(values), np.nan))
    keep = np.isfinite(values) & np.isfinite(log["frames"])
    if not keep.any():
        return f"no values of {metric}"
    seed = hp.get("seed")
    return Run(str(run_dir), algorithm, task, None if seed is None else int(seed),
               log["frames"][keep], seconds[keep], values[keep])


def collect_runs(paths: Sequence[str | Path], metric: str) -> tuple[list[Run], list[tuple[str, str]]]:
    """All runs under ``paths`` and the ``(dir, why)`` of those skipped; raises :class:`ReportError`
    for a path that does not exist or holds no run dirs.

    >>> try:
    ...     collect_runs(["/nonexistent"], "eval/ep_reward")
    ... except ReportError as err:
    ...     print(err)
    /nonexistent does not exist
    """
    dirs: list[Path] = []
    for p in paths:
        if not Path(p).exists():
            raise ReportError(f"{p} does not exist")
        found = find_run_dirs(p)
        if not found:
            raise ReportError(f"{p} holds no runs (no configs/hparams.json or training_log.csv)")
        dirs += [d for d in found if d not in dirs]
    runs, skipped = [], []
    for d in dirs:
        got = load_run(d, metric)
        if isinstance(got, Run):
            runs.append(got)
        else:
            skipped.append((str(d), got))
    return runs, skipped


def write_fake_run(run_dir: str | Path, algorithm: str, family: str, task: str, seed: int,
                   evals: Sequence[tuple[float, float]], finished: bool = True, secs_per_frame: float = 0.01) -> None:
    """Write a minimal run dir (hparams, a log with an eval row per ``(frames, value)``) for tests/docs.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "r"
    >>> write_fake_run(d, "qmix", "matrix", "two_step", 1, [(10, 1.0)], finished=False)
    >>> sorted(p.name for p in d.rglob("*"))
    ['configs', 'hparams.json', 'training_log.csv']
    """
    run_dir = Path(run_dir)
    (run_dir / "configs").mkdir(parents=True, exist_ok=True)
    hp = {"algorithm": {"name": algorithm}, "env": {"family": family, "task": task}, "seed": seed,
          "total_frames": int(max(f for f, _ in evals))}
    (run_dir / "configs" / "hparams.json").write_text(json.dumps(hp))
    rows = ["step,frames,eval/ep_reward,time/elapsed_s,rollout/ep_reward"]
    for i, (f, v) in enumerate(evals):
        rows.append(f"{2 * i},{f / 2},,{f / 2 * secs_per_frame},{v}")  # a non-eval row in between
        rows.append(f"{2 * i + 1},{f},{v},{f * secs_per_frame},{v}")
    (run_dir / "training_log.csv").write_text("\n".join(rows) + "\n")
    if finished:
        (run_dir / "models").mkdir(exist_ok=True)
        (run_dir / "models" / "final_model.pt").write_bytes(b"")
