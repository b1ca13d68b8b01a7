"""``training_log.csv``: reading it, repairing it after a kill (:func:`repair_log`), and the training
plots drawn from it: returns, loss, Q-values, epsilon / TD error.

>>> import tempfile, pathlib
>>> from marl_torchrl.plots import plot_training
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "training_log.csv").write_text("step,frames,rollout/ep_reward\\n0,10,1.0\\n1,20,2.0\\n")
>>> plot_training(d / "training_log.csv", d / "training_plots.png").exists()
True
"""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = ["read_log", "repair_log", "write_atomically", "moving_average", "plot_training"]


def read_log(csv_path: str | Path) -> dict[str, np.ndarray]:
    """Read a training log into ``{column: float array}``; empty or non-numeric cells are NaN.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = p.write_text("step,eval/ep_reward\\n0,\\n1,4.5\\n")
    >>> read_log(p)["eval/ep_reward"]
    array([nan, 4.5])
    """
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]

    def num(cell: str) -> float:
        try:
            return float(cell)
        except ValueError:
            return math.nan

    return {
        name: np.array([num(r[i]) if i < len(r) else math.nan for r in body], dtype=float)
        for i, name in enumerate(header)
    }


def last_value(log: dict[str, np.ndarray], key: str) -> float:
    """The last logged (non-NaN) value of column ``key`` of a :func:`read_log` log; NaN if it has none.

    >>> last_value({"eval/ep_reward": np.array([1.0, 2.5, np.nan])}, "eval/ep_reward")
    2.5
    >>> last_value({}, "eval/ep_reward")
    nan
    """
    values = log.get(key, np.array([]))
    values = values[~np.isnan(values)]
    return float(values[-1]) if len(values) else math.nan


def write_atomically(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` via a temp file in the same dir: readers see the old or the new file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed rewrite (disk full) leaves the old file, and no litter
        raise


def _records(text: str) -> Iterator[tuple[str, list[str]]]:
    """``(raw text, cells)`` of each CSV record, the raw text exactly as in the file."""
    raw: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            raw.append(line)
            yield line

    for cells in csv.reader(lines()):
        yield "".join(raw), cells
        raw.clear()


def repair_log(csv_path: str | Path, resume_step: int | None = None) -> list[str]:
    """Drop a row cut off mid-write (no line end, too few cells) and, with ``resume_step``, the rows with
    ``step > resume_step``; the other rows stay byte for byte. Returns the header (``["step"]`` if none).

    The file is rewritten atomically, and only when a row goes.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = p.write_text("step,a\\n0,1.5\\n1,2.5\\n2,3.5\\n3,4")  # killed while writing step 3
    >>> repair_log(p, resume_step=1), p.read_text()
    (['step', 'a'], 'step,a\\n0,1.5\\n1,2.5\\n')
    """
    with open(csv_path, newline="") as f:
        records = list(_records(f.read()))
    if not records or not records[0][0].endswith("\n"):  # no complete header: no rows either
        write_atomically(csv_path, "step\r\n")
        return ["step"]
    header, kept = records[0][1], [records[0][0]]
    for raw, cells in records[1:]:
        if not raw.endswith("\n") or len(cells) != len(header):
            continue  # cut off mid-write (or mangled)
        try:
            step = float(cells[0])
        except ValueError:
            continue
        if resume_step is None or step <= resume_step:
            kept.append(raw)
    if len(kept) < len(records):
        write_atomically(csv_path, "".join(kept))
    return header


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` values (shorter at the start).

    >>> moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2)
    array([1., 2., 4., 6.])
    """
    csum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def _series(log: dict[str, np.ndarray], x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The (x, y) points where column ``name`` has a value, or None when it has none."""
    y = log.get(name)
    if y is None:
        return None
    ok = np.isfinite(y) & np.isfinite(x)
    return (x[ok], y[ok]) if ok.any() else None


def _no_data(ax, title: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")


def plot_training(csv_path: str | Path, png_path: str | Path, window: int | None = None) -> Path:
    """Draw ``training_plots.png`` (4 panels) from a training log CSV and return its path.

    Panels: (1) ``rollout/ep_reward`` raw and moving average (``window`` rows; default about 1/20 of
    the run) with ``eval/ep_reward`` +- ``eval/std_ep_reward``; (2) ``train/loss``; (3)
    ``train/q_value``; (4) ``rollout/epsilon`` (or ``rollout/noise_sigma`` for Gaussian action noise)
    and ``train/td_error`` on a twin axis. The x axis is
    ``frames`` when the log has it, else ``step``. A panel whose columns are missing says "no data".
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    log = read_log(csv_path)
    n = len(next(iter(log.values()))) if log else 0
    has_frames = "frames" in log and np.isfinite(log["frames"]).any()
    x = log["frames"] if has_frames else log.get("step", np.arange(n, dtype=float))
    xlabel = "frames" if has_frames else "step"

    fig = Figure(figsize=(13, 8.5))  # Agg canvas, no pyplot: no global backend switch, nothing leaks
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    ax_ret, ax_loss, ax_q, ax_eps = axes.flat

    raw = _series(log, x, "rollout/ep_reward")
    ev = _series(log, x, "eval/ep_reward")
    if raw is None and ev is None:
        _no_data(ax_ret, "returns")
    else:
        ax_ret.set_title("returns")
        if raw is not None:
            w = window or max(1, len(raw[1]) // 20)
            ax_ret.plot(*raw, color="tab:blue", alpha=0.3, lw=0.8, label="rollout/ep_reward")
            ax_ret.plot(raw[0], moving_average(raw[1], w), color="tab:blue", lw=1.8, label=f"moving avg ({w})")
        if ev is not None:
            ax_ret.plot(*ev, "o-", color="tab:orange", ms=3, label="eval/ep_reward")
            std = log.get("eval/std_ep_reward")
            if std is not None:
                ok = np.isfinite(log["eval/ep_reward"]) & np.isfinite(x) & np.isfinite(std)
                if ok.any():
                    m, s = log["eval/ep_reward"][ok], std[ok]
                    ax_ret.fill_between(x[ok], m - s, m + s, color="tab:orange", alpha=0.2,
                                        label="eval +- std")
        ax_ret.legend(loc="best", fontsize=8)

    for ax, name, colour in [(ax_loss, "train/loss", "tab:red"), (ax_q, "train/q_value", "tab:green")]:
        pts = _series(log, x, name)
        if pts is None:
            _no_data(ax, name)
        else:
            ax.set_title(name)
            ax.plot(*pts, color=colour, lw=1.0)

    explore_name = "rollout/epsilon" if "rollout/epsilon" in log else "rollout/noise_sigma"
    eps, td = _series(log, x, explore_name), _series(log, x, "train/td_error")
    if eps is None and td is None:
        _no_data(ax_eps, "exploration / TD error")
    else:
        ax_eps.set_title("exploration / TD error")
        if eps is not None:
            ax_eps.plot(*eps, color="tab:purple", label=explore_name)
            ax_eps.set_ylabel(explore_name, color="tab:purple")
        if td is not None:
            twin = ax_eps.twinx()
            twin.plot(*td, color="tab:brown", lw=1.0, label="train/td_error")
            twin.set_ylabel("train/td_error", color="tab:brown")

    for ax in axes.flat:
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=100)
    return png_path
