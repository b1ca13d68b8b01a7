"""Learning curves over many runs: each run's metric is linearly interpolated onto a common grid (frames
or wall-clock seconds) *only within that run's own range*; per (algorithm, task) the mean over the runs
present at each grid point with a 95% percentile-bootstrap interval (runs resampled with replacement).

>>> import numpy as np
>>> m = interpolate_runs([np.array([0.0, 10.0]), np.array([0.0, 20.0])],
...                      [np.array([0.0, 1.0]), np.array([0.0, 4.0])], np.array([0.0, 10.0, 20.0]))
>>> m.tolist()
[[0.0, 1.0, nan], [0.0, 2.0, 4.0]]
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from marl_torchrl.report.collect import Run

__all__ = ["AXES", "common_grid", "interpolate_runs", "mean_curve", "group_curves", "write_curves_csv",
           "plot_curves"]

AXES = {"frames": "frames", "seconds": "time/elapsed_s"}
CURVE_FIELDS = ["axis", "task", "algorithm", "x", "n_runs", "mean", "ci_low", "ci_high"]


def common_grid(xs: Sequence[np.ndarray], max_points: int = 200) -> np.ndarray:
    """The union of the runs' x values, or ``max_points`` evenly spaced ones over their span if more.

    >>> common_grid([np.array([32.0, 64.0]), np.array([32.0, 96.0])]).tolist()
    [32.0, 64.0, 96.0]
    >>> common_grid([np.arange(10.0)], max_points=3).tolist()
    [0.0, 4.5, 9.0]
    """
    allx = np.unique(np.concatenate([x[np.isfinite(x)] for x in xs]))
    if len(allx) > max_points:
        return np.linspace(allx[0], allx[-1], max_points)
    return allx


def interpolate_runs(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], grid: np.ndarray) -> np.ndarray:
    """A ``(runs, grid)`` matrix: each run interpolated onto ``grid``, NaN outside its own x range
    (see the module example)."""
    out = np.full((len(xs), len(grid)), np.nan)
    for i, (x, y) in enumerate(zip(xs, ys)):
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            continue
        order = np.argsort(x[ok], kind="stable")
        x1, y1 = x[ok][order], y[ok][order]
        inside = (grid >= x1[0]) & (grid <= x1[-1])
        out[i, inside] = np.interp(grid[inside], x1, y1)
    return out


def mean_curve(matrix: np.ndarray, reps: int = 2000, seed: int = 0, level: float = 0.95):
    """``(n_runs, mean, ci_low, ci_high)`` per grid column of a ``(runs, grid)`` matrix (NaN = absent).

    >>> n, mean, lo, hi = mean_curve(np.array([[1.0, 2.0], [3.0, np.nan]]), reps=200)
    >>> n.tolist(), mean.tolist(), lo.tolist(), hi.tolist()
    ([2, 1], [2.0, 2.0], [1.0, 2.0], [3.0, 2.0])
    """
    present = np.isfinite(matrix)
    vals = np.where(present, matrix, 0.0)
    n = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = vals.sum(axis=0) / n
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(len(matrix), np.full(len(matrix), 1.0 / len(matrix)), size=reps)
        boot = (counts @ vals) / (counts @ present.astype(float))  # NaN where a resample has no run there
    a = round((1.0 - level) * 50.0, 10)
    lo = np.full(len(n), np.nan)
    hi = np.full(len(n), np.nan)
    for j in np.flatnonzero(n):
        col = boot[:, j][np.isfinite(boot[:, j])]
        lo[j], hi[j] = np.percentile(col, [a, 100.0 - a])
    return n, mean, lo, hi


def group_curves(runs: Sequence[Run], reps: int = 2000, seed: int = 0) -> list[dict]:
    """Curve rows (``CURVE_FIELDS``) for every (algorithm, task) group, on both axes.

    >>> from marl_torchrl.report.collect import Run
    >>> r = Run("d", "vdn", "t", 0, np.array([1.0, 2.0]), np.array([0.1, 0.2]), np.array([5.0, 6.0]))
    >>> [(row["axis"], row["x"], row["mean"]) for row in group_curves([r], reps=10)]
    [('frames', 1.0, 5.0), ('frames', 2.0, 6.0), ('seconds', 0.1, 5.0), ('seconds', 0.2, 6.0)]
    """
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.task, r.algorithm), []).append(r)
    rows = []
    for axis in AXES:
        for (task, algo), members in sorted(groups.items()):
            xs = [r.frames if axis == "frames" else r.seconds for r in members]
            if not any(np.isfinite(x).any() for x in xs):
                continue
            grid = common_grid(xs)
            n, mean, lo, hi = mean_curve(interpolate_runs(xs, [r.values for r in members], grid), reps, seed)
            for j, x in enumerate(grid):
                if n[j]:
                    rows.append({"axis": axis, "task": task, "algorithm": algo, "x": float(x), "n_runs": int(n[j]),
                                 "mean": float(mean[j]), "ci_low": float(lo[j]), "ci_high": float(hi[j])})
    return rows


def write_curves_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Write curve rows to CSV.

    >>> import tempfile, pathlib
    >>> p = write_curves_csv([], pathlib.Path(tempfile.mkdtemp()) / "c.csv")
    >>> p.read_text().strip()
    'axis,task,algorithm,x,n_runs,mean,ci_low,ci_high'
    """
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CURVE_FIELDS)
        w.writeheader()
        w.writerows(rows)
    return path


def plot_curves(rows: Sequence[dict], axis: str, metric: str, path: str | Path,
                baselines: dict[str, float] | None = None) -> Path:
    """One PNG for ``axis``: a panel per task, a line (mean) and band (95% CI) per algorithm, and a dashed
    grey line per ``baselines`` entry (label -> value, e.g. a random policy's return) in every panel.

    >>> import tempfile, pathlib
    >>> row = {"axis": "frames", "task": "t", "algorithm": "a", "x": 1.0, "mean": 1.0, "ci_low": 0.0, "ci_high": 2.0}
    >>> plot_curves([row], "frames", "eval/ep_reward", pathlib.Path(tempfile.mkdtemp()) / "c.png").exists()
    True
    >>> plot_curves([row], "frames", "r", pathlib.Path(tempfile.mkdtemp()) / "c.png", {"random": 0.5}).exists()
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if r["axis"] == axis]
    tasks = sorted({r["task"] for r in rows}) or ["(no data)"]
    fig = Figure(figsize=(4.5 * len(tasks), 3.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(tasks), squeeze=False)[0])
    for ax, task in zip(axes, tasks):
        for algo in sorted({r["algorithm"] for r in rows if r["task"] == task}):
            pts = [r for r in rows if r["task"] == task and r["algorithm"] == algo]
            x = np.array([p["x"] for p in pts])
            line, = ax.plot(x, [p["mean"] for p in pts], label=algo, marker="." if len(x) < 3 else None)
            ax.fill_between(x, [p["ci_low"] for p in pts], [p["ci_high"] for p in pts], alpha=0.2,
                            color=line.get_color())
        for (label, value), style in zip((baselines or {}).items(), ("--", ":", "-.")):
            ax.axhline(value, color="grey", ls=style, label=label)
        ax.set_title(task)
        ax.set_xlabel("frames" if axis == "frames" else "wall-clock seconds")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.savefig(Path(path), dpi=100)
    return Path(path)
