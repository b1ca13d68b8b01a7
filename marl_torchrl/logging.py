"""Metric loggers: CSV, wandb and tensorboard behind one ``MultiLogger``.

Every backend gets the same metric names (``rollout/ep_reward``, ``train/loss``, ``frames``, ...).
The CSV backend writes ``<run_dir>/training_log.csv``, one row per ``log`` call; the plots are drawn
from it by :func:`marl_torchrl.plots.plot_training` (also importable from here).

Resuming after the checkpoint of iteration ``resume_step`` (``build_loggers(..., resume_step=k)``):
the CSV drops its rows with ``step > k`` (the resumed run writes them again), tensorboard hides its
events with ``step > k`` (``SummaryWriter(purge_step=k + 1)``, honoured by tensorboard's readers),
and wandb continues the same run (id in ``<run_dir>/wandb/run_id``) but cannot rewrite the past:
the steps it already holds keep the killed run's values, and it ignores the re-logged ones.

A backend that cannot write (disk full, unwritable dir) raises :class:`LoggerWriteError`, one line.

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

import contextlib
import csv
import io
from pathlib import Path
from typing import Any, Iterable, Mapping

from marl_torchrl.plots import plot_training, repair_log, write_atomically
from marl_torchrl.registry import Registry
from marl_torchrl.wandb_logger import WandbLogger

__all__ = ["LOGGERS", "CSVLogger", "WandbLogger", "TensorboardLogger", "MultiLogger", "LoggerWriteError",
           "build_loggers", "plot_training"]

CSV_NAME = "training_log.csv"
LOGGERS: Registry = Registry("logger")


class LoggerWriteError(OSError):
    """A logger backend could not write (disk full, unwritable file): one line naming backend and file.

    >>> raise LoggerWriteError("csv logger cannot write /run/training_log.csv: No space left on device")
    Traceback (most recent call last):
    ...
    marl_torchrl.logging.LoggerWriteError: csv logger cannot write /run/training_log.csv: No space left on device
    """


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
    (the file is rewritten once, atomically). An existing file is resumed: old rows are kept, except
    a row cut off mid-write (always) and, with ``resume_step``, the rows with ``step > resume_step``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> log = CSVLogger(d); log.log({"a": 1.5}, step=0); log.log({"a": 9}, step=1); log.close()
    >>> log = CSVLogger(d, resume_step=0); log.log({"b": 2}, step=1); log.close()  # step 1 again
    >>> print((d / "training_log.csv").read_text().strip())
    step,a,b
    0,1.5,
    1,,2
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None, **_: Any):
        self.path = Path(run_dir) / CSV_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.columns: list[str] = ["step"]
        if self.path.exists() and self.path.stat().st_size > 0:
            self.columns = repair_log(self.path, resume_step)
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
        out = io.StringIO(newline="")
        writer = csv.writer(out)
        writer.writerow(self.columns)
        writer.writerows(r + [""] * (len(self.columns) - len(r)) for r in old_rows)
        write_atomically(self.path, out.getvalue())
        self._file = open(self.path, "a", newline="")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


LOGGERS.register("wandb")(WandbLogger)


@LOGGERS.register("tensorboard")
class TensorboardLogger:
    """``SummaryWriter(run_dir / "tensorboard")``, one ``add_scalar`` per metric, flushed each call.

    With ``resume_step`` the events of later steps are hidden (``purge_step``), so readers see each
    step once.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> tb = TensorboardLogger(d); tb.log({"train/loss": 0.1}, step=3); tb.close()
    >>> any((d / "tensorboard").glob("events.out.tfevents.*"))
    True
    """

    def __init__(self, run_dir: str | Path, resume_step: int | None = None, **_: Any):
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / "tensorboard"
        purge = None if resume_step is None else int(resume_step) + 1
        self.writer = SummaryWriter(log_dir=str(self.path), purge_step=purge)

    def log(self, metrics: Mapping[str, int | float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _write_error(name: str, where: Any, err: OSError) -> LoggerWriteError:
    """One line: which backend, which file, why; ``errno`` kept, the ``OSError`` chained by the caller."""
    where = err.filename or where
    out = LoggerWriteError(" ".join(f"{name} logger cannot write {where}: {err.strerror or err}".split()))
    out.errno = err.errno
    return out


class MultiLogger:
    """Fans each ``log(metrics, step)`` out to every backend, with the same metric names.

    Values may be numbers, 0-d tensors or numpy scalars; ``None`` values are dropped (absent).
    A backend whose ``log`` or ``close`` raises ``OSError`` turns it into :class:`LoggerWriteError`,
    raised once the other backends have logged the row (closing never repeats that backend's error).
    Also a context manager that closes the backends.

    >>> class Echo:
    ...     def log(self, metrics, step): print(step, metrics)
    ...     def close(self): print("closed")
    >>> with MultiLogger([Echo()]) as logger:
    ...     logger.log({"train/loss": 0.5, "eval/ep_reward": None}, step=7)
    7 {'train/loss': 0.5}
    closed
    """

    def __init__(self, backends: Iterable[Any], names: Iterable[str] | None = None):
        self.backends = list(backends)
        self.names = list(names) if names is not None else [type(b).__name__ for b in self.backends]
        self._failed: set[int] = set()
        self._closed = False

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        if "step" in metrics:
            raise ValueError("'step' is a reserved column name; pass it as the step argument")
        clean = {k: _to_number(k, v) for k, v in metrics.items() if v is not None}
        self._each("log", clean, int(step))

    def _each(self, method: str, *args: Any) -> None:
        first = None
        for i, backend in enumerate(self.backends):
            try:
                getattr(backend, method)(*args)
            except OSError as err:
                if first is None and not (method == "close" and i in self._failed):
                    first = (_write_error(self.names[i], getattr(backend, "path", "?"), err), err)
                self._failed.add(i)
        if first is not None:
            raise first[0] from first[1]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._each("close")

    def __enter__(self) -> "MultiLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def build_loggers(names: Iterable[str] | str, run_dir: str | Path, config: Mapping | None = None, *,
                  wandb_mode: str = "offline", project: str = "marl-torchrl", run_name: str | None = None,
                  resume_step: int | None = None) -> MultiLogger:
    """Build a :class:`MultiLogger` from logger names (``"csv"``, ``"wandb"``, ``"tensorboard"``).

    All names are checked before any backend starts; duplicates are ignored. ``resume_step``: the
    iteration of the checkpoint being resumed (see the module doc); None appends to what is there.
    A backend that cannot create its files raises :class:`LoggerWriteError`.

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
        for name, build in zip(names, builders):
            try:
                backends.append(build(run_dir, config=config, wandb_mode=wandb_mode, project=project,
                                      run_name=run_name, resume_step=resume_step))
            except OSError as err:
                raise _write_error(name, run_dir, err) from err
    except BaseException:
        with contextlib.suppress(OSError):  # the first error is the one to report
            MultiLogger(backends).close()
        raise
    return MultiLogger(backends, names)
