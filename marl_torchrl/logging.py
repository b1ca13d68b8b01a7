"""Metric loggers: CSV, wandb and tensorboard behind one ``MultiLogger``.

Every backend gets the same metric names (``rollout/ep_reward``, ``train/loss``, ``frames``, ...).
The CSV backend writes ``<run_dir>/training_log.csv``, one row per ``log`` call; the plots are drawn
from it by :func:`marl_torchrl.plots.plot_training` (also importable from here).

>>> import tempfile, pathlib
>>> from marl_torchrl.logging import build_loggers
>>> run_dir = pathlib.Path(tempfile.mkdtemp())
>>> with build_loggers(["csv"], run_dir, config={"lr": 1e-3}) as logger:
...     logger.log({"frames": 100, "train/loss": 0.5}, step=0)
...     logger.log({"frames": 200, "train/loss": 0.25, "eval/ep_reward": 3.0}, step=1)
>>> print((run_dir / "training_log.csv").read_text().strip())
step,frames,train/loss,eval/ep_reward
0,100,0.5,
1,200,0.25,3.0
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from marl_torchrl.registry import Registry

__all__ = ["LOGGERS", "CSVLogger", "WandbLogger", "TensorboardLogger", "MultiLogger", "build_loggers",
           "plot_training"]

CSV_NAME = "training_log.csv"
LOGGERS: Registry = Registry("logger")


def _to_number(name: str, value: Any) -> int | float:
    """A python int/float from a number, 0-d tensor or numpy scalar; bools become ints."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric '{name}' is not a number: {value!r}") from None


@LOGGERS.register("csv")
class CSVLogger:
    """Appends one row per call to ``<run_dir>/training_log.csv`` (``step`` first), flushing each row.

    Metrics absent from a row leave an empty cell; a metric seen for the first time widens the header
    (the file is rewritten once, atomically). An existing file is resumed: old rows are kept.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> log = CSVLogger(d); log.log({"a": 1.5}, step=0); log.close()
    >>> log = CSVLogger(d); log.log({"b": 2}, step=1); log.close()  # resumes, widens the header
    >>> print((d / "training_log.csv").read_text().strip())
    step,a,b
    0,1.5,
    1,,2
    """

    def __init__(self, run_dir: str | Path, **_: Any):
        self.path = Path(run_dir) / CSV_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] = ["step"]
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
            if header:
                self.columns = header
        else:
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        self._file = open(self.path, "a", newline="")

    def log(self, metrics: Mapping[str, int | float], step: int) -> None:
        new = [k for k in metrics if k not in self.columns]
        if new:
            self._widen(new)
        row = {"step": step, **metrics}
        csv.writer(self._file).writerow(["" if row.get(c) is None else row[c] for c in self.columns])
        self._file.flush()

    def _widen(self, new: list[str]) -> None:
        """Rewrite the file with ``new`` columns appended to the header; old rows get empty cells."""
        self._file.close()
        with open(self.path, newline="") as f:
            old_rows = list(csv.reader(f))[1:]
        self.columns = self.columns + new
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.columns)
            writer.writerows(r + [""] * (len(self.columns) - len(r)) for r in old_rows)
        os.replace(tmp, self.path)
        self._file = open(self.path, "a", newline="")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


@LOGGERS.register("wandb")
class WandbLogger:
    """A wandb run in ``run_dir`` (``mode="offline"`` needs no network; sync later with ``wandb sync``).

    >>> WandbLogger.__name__  # a real run is exercised in tests/test_logging.py
    'WandbLogger'
    """

    def __init__(self, run_dir: str | Path, *, config: Mapping | None = None, wandb_mode: str = "offline",
                 project: str = "marl-torchrl", run_name: str | None = None, **_: Any):
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, dir=str(run_dir), config=dict(config or {}), mode=wandb_mode,
                              name=run_name)

    def log(self, metrics: Mapping[str, int | float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


@LOGGERS.register("tensorboard")
class TensorboardLogger:
    """``SummaryWriter(run_dir / "tensorboard")``, one ``add_scalar`` per metric, flushed each call.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> tb = TensorboardLogger(d); tb.log({"train/loss": 0.1}, step=3); tb.close()
    >>> any((d / "tensorboard").glob("events.out.tfevents.*"))
    True
    """

    def __init__(self, run_dir: str | Path, **_: Any):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log(self, metrics: Mapping[str, int | float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MultiLogger:
    """Fans each ``log(metrics, step)`` out to every backend, with the same metric names.

    Values may be numbers, 0-d tensors or numpy scalars; ``None`` values are dropped (absent).
    Also a context manager that closes the backends.

    >>> class Echo:
    ...     def log(self, metrics, step): print(step, metrics)
    ...     def close(self): print("closed")
    >>> with MultiLogger([Echo()]) as logger:
    ...     logger.log({"train/loss": 0.5, "eval/ep_reward": None}, step=7)
    7 {'train/loss': 0.5}
    closed
    """

    def __init__(self, backends: Iterable[Any]):
        self.backends = list(backends)
        self._closed = False

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if "step" in metrics:
            raise ValueError("'step' is a reserved column name; pass it as the step argument")
        clean = {k: _to_number(k, v) for k, v in metrics.items() if v is not None}
        for backend in self.backends:
            backend.log(clean, int(step))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for backend in self.backends:
                backend.close()

    def __enter__(self) -> "MultiLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def build_loggers(names: Iterable[str] | str, run_dir: str | Path, config: Mapping | None = None, *,
                  wandb_mode: str = "offline", project: str = "marl-torchrl",
                  run_name: str | None = None) -> MultiLogger:
    """Build a :class:`MultiLogger` from logger names (``"csv"``, ``"wandb"``, ``"tensorboard"``).

    All names are checked before any backend starts; duplicates are ignored.

    >>> import tempfile
    >>> build_loggers(["csv", "mlflow"], tempfile.mkdtemp(), {})
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown logger 'mlflow'; known: csv, tensorboard, wandb
    """
    names = [names] if isinstance(names, str) else list(dict.fromkeys(str(n) for n in names))
    builders = [LOGGERS.get(n) for n in names]
    backends = []
    try:
        for build in builders:
            backends.append(build(run_dir, config=config, wandb_mode=wandb_mode, project=project,
                                  run_name=run_name))
    except BaseException:
        MultiLogger(backends).close()
        raise
    return MultiLogger(backends)


def __getattr__(name: str) -> Any:
    """``plot_training`` is re-exported lazily so that logging alone does not import matplotlib."""
    if name == "plot_training":
        from marl_torchrl.plots import plot_training

        return plot_training
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
