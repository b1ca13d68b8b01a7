"""The final-performance table and the probability-of-improvement table, as rows and as CSV/markdown.

Final performance of a run = the last non-empty value of the metric. Per (algorithm, task): number of
runs, mean and IQM with 95% bootstrap intervals (runs resampled within the task); per algorithm on more
than one task also an ``all (k tasks)`` row, pooled over its tasks with the stratified bootstrap (raw,
unnormalised scores). See :mod:`marl_torchrl.report.stats` for the exact definitions.

>>> from marl_torchrl.report.collect import Run
>>> import numpy as np
>>> runs = [Run("d", "vdn", "t", s, np.ones(1), np.ones(1), np.array([v])) for s, v in enumerate([1.0, 2.0, 6.0])]
>>> row = final_table(runs, reps=50)[0]
>>> row["n_runs"], row["mean"], row["iqm"]   # IQM of 3 runs (rliable's): floor(3/4) = 0 dropped, the mean
(3, 3.0, 3.0)
"""
from __future__ import annotations

import csv
from itertools import combinations
from pathlib import Path
from typing import Sequence

from marl_torchrl.report.collect import Run
from marl_torchrl.report.stats import bootstrap_ci, iqm, prob_improvement_ci

__all__ = ["FINAL_FIELDS", "POI_FIELDS", "scores_by", "final_table", "poi_table", "write_csv", "markdown_table"]

FINAL_FIELDS = ["algorithm", "task", "n_runs", "mean", "mean_ci_low", "mean_ci_high", "iqm", "iqm_ci_low",
                "iqm_ci_high"]
POI_FIELDS = ["x", "y", "shared_tasks", "p_x_better", "ci_low", "ci_high"]


def scores_by(runs: Sequence[Run]) -> dict[str, dict[str, list[float]]]:
    """``{algorithm: {task: [final score per run]}}``.

    >>> import numpy as np
    >>> scores_by([Run("d", "a", "t", 0, np.ones(1), np.ones(1), np.array([1.0, 2.0]))])
    {'a': {'t': [2.0]}}
    """
    out: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        out.setdefault(r.algorithm, {}).setdefault(r.task, []).append(r.final)
    return out


def _row(algo: str, task: str, strata: list[list[float]], reps: int, seed: int) -> dict:
    mean, mlo, mhi = bootstrap_ci(strata, reps=reps, seed=seed)
    q, qlo, qhi = bootstrap_ci(strata, stat=iqm, reps=reps, seed=seed)
    return {"algorithm": algo, "task": task, "n_runs": sum(len(s) for s in strata), "mean": mean,
            "mean_ci_low": mlo, "mean_ci_high": mhi, "iqm": q, "iqm_ci_low": qlo, "iqm_ci_high": qhi}


def final_table(runs: Sequence[Run], reps: int = 2000, seed: int = 0) -> list[dict]:
    """Rows (``FINAL_FIELDS``) per (algorithm, task), then an ``all`` row per multi-task algorithm."""
    rows = []
    by = scores_by(runs)
    for algo in sorted(by):
        for task in sorted(by[algo]):
            rows.append(_row(algo, task, [by[algo][task]], reps, seed))
        if len(by[algo]) > 1:
            rows.append(_row(algo, f"all ({len(by[algo])} tasks)", [by[algo][t] for t in sorted(by[algo])], reps, seed))
    return rows


def poi_table(runs: Sequence[Run], reps: int = 2000, seed: int = 0) -> list[dict]:
    """Rows (``POI_FIELDS``): ``P(x > y)`` for every pair of algorithms with at least one shared task.

    >>> import numpy as np
    >>> mk = lambda a, v: Run("d", a, "t", 0, np.ones(1), np.ones(1), np.array([v]))
    >>> [(r["x"], r["y"], r["p_x_better"]) for r in poi_table([mk("a", 1.0), mk("b", 0.0), mk("b", 1.0)], reps=20)]
    [('a', 'b', 0.75)]
    """
    by = scores_by(runs)
    rows = []
    for x, y in combinations(sorted(by), 2):
        shared = sorted(set(by[x]) & set(by[y]))
        if not shared:
            continue
        p, lo, hi = prob_improvement_ci([by[x][t] for t in shared], [by[y][t] for t in shared], reps, seed)
        rows.append({"x": x, "y": y, "shared_tasks": " ".join(shared), "p_x_better": p, "ci_low": lo, "ci_high": hi})
    return rows


def write_csv(rows: Sequence[dict], fields: Sequence[str], path: str | Path) -> Path:
    """Write ``rows`` with columns ``fields``.

    >>> import tempfile, pathlib
    >>> write_csv([{"a": 1}], ["a"], pathlib.Path(tempfile.mkdtemp()) / "t.csv").read_text().split()
    ['a', '1']
    """
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        w.writeheader()
        w.writerows(rows)
    return path


def markdown_table(rows: Sequence[dict], fields: Sequence[str], digits: int = 3) -> str:
    """A markdown table; floats rounded to ``digits``.

    >>> print(markdown_table([{"a": "x", "b": 0.12345}], ["a", "b"]))
    | a | b |
    |---|---|
    | x | 0.123 |
    """
    def cell(v) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join(cell(r[f]) for f in fields) + " |" for r in rows]
    return "\n".join(lines)
