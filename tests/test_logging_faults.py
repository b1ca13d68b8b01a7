"""Loggers under faults: resuming after a kill (no duplicated or missing rows), a row cut off
mid-write, wandb without a network, and a backend that cannot write (one clear error)."""
import csv
import errno
import os
import socket

import pytest

from marl_torchrl.logging import CSV_NAME, CSVLogger, LoggerWriteError, MultiLogger, build_loggers
from marl_torchrl.plots import read_log


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _log_steps(run_dir, steps, resume_step=None, names=("csv",), value=1.0):
    with build_loggers(list(names), run_dir, {}, resume_step=resume_step) as logger:
        for s in steps:
            logger.log({"frames": 10 * s, "train/loss": value * s}, step=s)


def test_resume_step_drops_later_rows_then_each_step_once(tmp_path):
    _log_steps(tmp_path, range(1, 11))  # killed after step 10; the last checkpoint was step 6
    before = (tmp_path / CSV_NAME).read_bytes()
    _log_steps(tmp_path, range(7, 10), resume_step=6, value=-1.0)
    rows = _rows(tmp_path / CSV_NAME)
    assert rows[0] == ["step", "frames", "train/loss"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 10))  # 1..9, each once
    assert rows[7] == ["7", "70", "-7.0"]  # the resumed run's values
    after = (tmp_path / CSV_NAME).read_bytes()
    kept = b"".join(before.splitlines(keepends=True)[:7])  # header + steps 1..6
    assert after.startswith(kept)  # rows up to the checkpoint unchanged, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == [CSV_NAME]  # no temp file left


def test_resume_step_none_appends_and_past_the_end_keeps_all(tmp_path):
    _log_steps(tmp_path, range(3))
    before = (tmp_path / CSV_NAME).read_bytes()
    CSVLogger(tmp_path, resume_step=5).close()  # nothing after the checkpoint: file untouched
    assert (tmp_path / CSV_NAME).read_bytes() == before
    _log_steps(tmp_path, [1])  # resume_step=None: today's behaviour, append
    assert [r[0] for r in _rows(tmp_path / CSV_NAME)[1:]] == ["0", "1", "2", "1"]
    _log_steps(tmp_path / "fresh", [4], resume_step=3)  # no file yet: a fresh one
    assert _rows(tmp_path / "fresh" / CSV_NAME) == [["step", "frames", "train/loss"], ["4", "40", "4.0"]]


@pytest.mark.parametrize("tail", [b"4,40", b"4,40,0.", b"4,40\r\n", b"\x00\x00\x00"],
                         ids=["cut-mid-cell", "no-newline", "too-few-cells", "nul-padding"])
@pytest.mark.parametrize("resume_step", [None, 2])
def test_row_cut_off_mid_write_is_dropped(tmp_path, tail, resume_step):
    _log_steps(tmp_path, range(4))
    with open(tmp_path / CSV_NAME, "ab") as f:
        f.write(tail)
    _log_steps(tmp_path, [9], resume_step=resume_step)
    rows = _rows(tmp_path / CSV_NAME)
    assert all(len(r) == 3 for r in rows)  # always parses, every row complete
    assert [r[0] for r in rows[1:]] == (["0", "1", "2", "3"] if resume_step is None else ["0", "1", "2"]) + ["9"]
    assert list(read_log(tmp_path / CSV_NAME)["step"])[-1] == 9.0


def test_header_cut_off_starts_over(tmp_path):
    (tmp_path / CSV_NAME).write_bytes(b"step,fra")
    _log_steps(tmp_path, [0])
    assert _rows(tmp_path / CSV_NAME) == [["step", "frames", "train/loss"], ["0", "0", "0.0"]]


def test_tensorboard_resume_hides_later_steps(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _log_steps(tmp_path, range(1, 11), names=["tensorboard"])
    _log_steps(tmp_path, range(7, 10), resume_step=6, names=["tensorboard"], value=-1.0)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert [s for s, _ in loss] == list(range(1, 10))
    assert loss[5][1] == 6.0 and loss[6][1] == -7.0


class _Recorder:
    def __init__(self):
        self.rows, self.closed = [], False

    def log(self, metrics, step):
        self.rows.append(step)

    def close(self):
        self.closed = True


def test_backend_that_cannot_write_raises_one_clear_error(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux) for a real 'disk full'")
    csv_logger, rec = CSVLogger(tmp_path), _Recorder()
    csv_logger.log({"train/loss": 1.0}, step=2)  # the column exists: the next row is a plain append
    csv_logger._file.close()
    csv_logger._file = open("/dev/full", "a", newline="")  # every flush: ENOSPC
    logger = MultiLogger([csv_logger, rec], names=["csv", "recorder"])
    with pytest.raises(LoggerWriteError) as err:
        logger.log({"train/loss": 0.5}, step=3)
    msg = str(err.value)
    assert isinstance(err.value, OSError) and err.value.errno == errno.ENOSPC
    assert "\n" not in msg and msg.startswith("csv logger cannot write") and "No space left" in msg
    assert rec.rows == [3]  # the other backends still got the row
    logger.close()  # the failing backend's error is not repeated on close ...
    assert rec.closed  # ... and every other backend is closed


def test_patched_backend_oserror_names_backend_and_file(tmp_path, monkeypatch):
    def full(self, metrics, step):
        raise OSError(errno.EROFS, "Read-only file system", str(self.path))

    monkeypatch.setattr(CSVLogger, "log", full)
    with pytest.raises(LoggerWriteError, match=r"^csv logger cannot write .*training_log\.csv: Read-only"):
        with build_loggers(["csv"], tmp_path, {}) as logger:
            logger.log({"train/loss": 0.5}, step=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(LoggerWriteError, match="^csv logger cannot write"):  # run dir is a file
        build_loggers(["csv"], tmp_path / "file" / "run", {})


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: nothing listens there


@pytest.fixture
def no_wandb_server(monkeypatch):
    pytest.importorskip("wandb")
    for var in ("WANDB_MODE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_free_port()}")  # never a real server


def test_wandb_online_without_server_logs_offline_with_one_warning(tmp_path, capfd, no_wandb_server):
    (tmp_path / "wandb").mkdir()
    (tmp_path / "wandb" / "run_id").write_text("resumed123\n")  # a resumed run keeps its wandb id
    logger = build_loggers(["wandb"], tmp_path, {"lr": 1e-3}, wandb_mode="online", project="marl-tests")
    logger.log({"train/loss": 1.0}, step=0)
    logger.log({"train/loss": 0.5}, step=1)
    logger.close()
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if "wandb" in ln and "warning" in ln.lower()]
    assert len(warnings) == 1, warnings
    runs = list((tmp_path / "wandb").glob("offline-run-*-resumed123"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    assert warnings[0].startswith("warning: wandb cannot reach its server (127.0.0.1:")
    assert warnings[0].endswith(f"logging offline to {runs[0]}; sync later with: wandb sync {runs[0]}")


def test_wandb_init_failing_online_falls_back_offline(tmp_path, capfd, no_wandb_server, monkeypatch):
    import wandb

    import marl_torchrl.wandb_logger as wl

    calls = []

    class FakeRun:
        dir = str(tmp_path / "wandb" / "offline-run-x" / "files")

        def finish(self):
            calls.append("finish")

    def fake_init(mode, **kwargs):
        calls.append((mode, kwargs["id"], kwargs["resume"], kwargs["settings"].init_timeout))
        if mode == "online":
            raise wandb.errors.CommError("timed out\nafter 5s")
        return FakeRun()

    monkeypatch.setattr(wl, "server_unreachable", lambda url: None)  # the probe passes ...
    monkeypatch.setattr(wandb, "init", fake_init)  # ... but init fails anyway
    wl.WandbLogger(tmp_path, wandb_mode="online", init_timeout=5).close()
    run_id = (tmp_path / "wandb" / "run_id").read_text().strip()
    assert calls == [("online", run_id, "allow", 5), ("offline", run_id, "allow", 5), "finish"]
    err = capfd.readouterr().err.strip()
    assert "\n" not in err and err.startswith("warning: wandb cannot reach its server (CommError: timed out after 5s)")
