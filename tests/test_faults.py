"""Faults at run time: interrupts, non-finite updates, kill -9 and resume, a full disk, an unwritable run dir.

The signal tests run the real command line in a subprocess and wait for its first logged iteration
(polling the CSV, never timing anything); the others run in-process with a patch.
"""
from __future__ import annotations

import csv
import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from marl_torchrl.checkpoint import load_checkpoint
from marl_torchrl.config import compose_config
from marl_torchrl.faults import NonFiniteError, WriteError, newest_checkpoint
from marl_torchrl.train import run

TINY = ["algorithm=vdn", "env=matrix/two_step", "env.num_envs=8", "collector.frames_per_batch=32",
        "replay.batch_size=4", "replay.warmup=4", "eval.interval_frames=0", "model.hidden_dim=8",
        "train.updates_per_batch=2", "checkpoint.interval_frames=64"]
ENV = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def _steps(run_dir: Path) -> list[int]:
    with open(run_dir / "training_log.csv") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def _start(run_dir: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "marl_torchrl.train", *TINY, *extra, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _wait_for_rows(run_dir: Path, proc: subprocess.Popen, rows: int) -> None:
    """Until the run has logged ``rows`` iterations (a behaviour to wait for, not a time to assert)."""
    log = run_dir / "training_log.csv"
    for _ in range(6000):
        if log.exists() and len(_steps(run_dir)) >= rows:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never logged its first iterations")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_saves_a_checkpoint_closes_the_run_and_says_how_to_resume(tmp_path, sig, code):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "total_frames=10000000")
    _wait_for_rows(run_dir, proc, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if "resume with:" in x]
    assert len(line) == 1 and f"interrupted by {signal.Signals(sig).name}" in line[0], err
    saved = Path(line[0].split("saved ")[1].split(";")[0])
    frames = load_checkpoint(saved)["counters"]["frames"]
    assert saved.name == f"checkpoint_{frames}.pt" and saved.parent == run_dir / "models"
    assert (run_dir / "training_plots.png").exists() and not list(run_dir.glob("models/*.tmp"))
    assert _steps(run_dir) == list(range(1, len(_steps(run_dir)) + 1))
    # the printed command continues the run in its dir, rows and counters without a gap or a repeat
    command = line[0].split("resume with: ")[1].split()
    assert command[0] == "marl-train" and f"resume={run_dir}" in command
    if sig != signal.SIGINT:
        return  # the same checkpoint and command as SIGINT's: running them once is enough
    args = [a if not a.startswith("total_frames=") else f"total_frames={frames + 64}" for a in command[1:]]
    done = subprocess.run([sys.executable, "-m", "marl_torchrl.train", *args], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _steps(run_dir) == list(range(1, len(_steps(run_dir)) + 1))
    assert load_checkpoint(run_dir / "models" / "final_model.pt")["counters"]["frames"] == frames + 64


def test_a_second_interrupt_exits_at_once_without_partial_files(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "total_frames=10000000", "checkpoint.interval_frames=32")
    _wait_for_rows(run_dir, proc, 2)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not list(run_dir.glob("models/*.tmp"))
    newest = newest_checkpoint(run_dir)
    assert newest is not None and load_checkpoint(newest)["counters"]["frames"] > 0


def test_kill_9_then_resume_from_the_run_dir_repeats_and_misses_no_iteration(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "total_frames=10000000", "checkpoint.interval_frames=96")
    _wait_for_rows(run_dir, proc, random.Random(0).randint(4, 9))
    proc.kill()
    proc.communicate(timeout=60)
    newest = newest_checkpoint(run_dir)
    assert newest is not None
    (run_dir / "models" / "checkpoint_99999999.pt").write_bytes(b"PK\x03\x04 a write that was cut off")
    assert newest_checkpoint(run_dir) == newest  # a cut-off file is never the newest
    ckpt = load_checkpoint(newest)
    frames, iteration = ckpt["counters"]["frames"], ckpt["counters"]["iteration"]
    cfg = compose_config(*TINY, f"resume={run_dir}", f"total_frames={frames + 96}", "checkpoint.save_buffer=true")
    metrics = run(cfg, run_dir)
    assert _steps(run_dir) == list(range(1, iteration + 4))
    assert metrics["frames"] == frames + 96 and metrics["train/num_updates"] > ckpt["counters"]["num_updates"]


def test_resume_buffer_restores_the_replay_exactly(tmp_path):
    cfg = compose_config(*TINY, "total_frames=128", "checkpoint.save_buffer=true")
    run(cfg, tmp_path / "a")
    saved = load_checkpoint(tmp_path / "a" / "models" / "checkpoint_128.pt")["replay"]
    from marl_torchrl.loop import setup

    resumed = setup(compose_config(*TINY, f"resume={tmp_path / 'a' / 'models' / 'checkpoint_128.pt'}",
                                   "resume_buffer=true", "total_frames=256"), tmp_path / "b")
    state = resumed.data.replay.state_dict()
    assert state["_storage"]["_len"] == saved["_storage"]["_len"] > 0
    assert state["_writer"] == saved["_writer"]
    flat = dict(_flatten(saved["_storage"]["_storage"]))
    assert flat and dict(_flatten(state["_storage"]["_storage"])).keys() == flat.keys()
    n = saved["_storage"]["_len"]  # the storage is allocated for its capacity: only the filled rows count
    for key, value in _flatten(state["_storage"]["_storage"]):
        assert torch.equal(value[:n], flat[key][:n]), key


def _flatten(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, (*prefix, key))
        elif torch.is_tensor(value):
            yield (*prefix, key), value


def _poison_after(monkeypatch, n_ok: int) -> None:
    """Every sampled batch after the first ``n_ok`` updates carries a NaN reward."""
    import marl_torchrl.loop as loop

    calls, real = {"n": 0}, loop.gradient_step

    def step(parts, batch):
        calls["n"] += 1
        if calls["n"] > n_ok:
            batch = batch.clone()
            batch.set("reward", torch.full_like(batch.get("reward"), float("nan")))
        return real(parts, batch)

    monkeypatch.setattr(loop, "gradient_step", step)


def test_a_non_finite_loss_stops_the_run_and_no_non_finite_checkpoint_is_written(tmp_path, monkeypatch):
    _poison_after(monkeypatch, 6)
    with pytest.raises(NonFiniteError, match="non-finite train/loss") as err:
        run(compose_config(*TINY, "total_frames=6400"), tmp_path)
    assert err.value.exit_code == 3 and err.value.checkpoint == tmp_path / "models" / "checkpoint_64.pt"
    for path in (tmp_path / "models").glob("*.pt"):
        params = load_checkpoint(path)["parts"]["loss"]
        assert all(torch.isfinite(v).all() for v in params.values() if v.is_floating_point()), path


def test_max_skipped_updates_skips_and_logs_them_then_stops_past_the_limit(tmp_path, monkeypatch):
    _poison_after(monkeypatch, 6)
    with pytest.raises(NonFiniteError):
        run(compose_config(*TINY, "total_frames=6400", "train.max_skipped_updates=3"), tmp_path / "a")
    with open(tmp_path / "a" / "training_log.csv") as f:
        skipped = [float(r["train/skipped_updates"]) for r in csv.DictReader(f)]
    # 2 updates per iteration, the first 6 fine: iteration 4 skips 2 and logs it; iteration 5's second skip
    # is the 4th, past the limit of 3, and stops the run before its row
    assert skipped == [0, 0, 0, 2]
    monkeypatch.undo()
    _poison_after(monkeypatch, 10**9)
    metrics = run(compose_config(*TINY, "total_frames=128", "train.max_skipped_updates=5"), tmp_path / "b")
    assert metrics["train/skipped_updates"] == 0


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import marl_torchrl.checkpoint as checkpoint

    calls, real = {"n": 0}, checkpoint.torch.save

    def save(obj, path, *a, **k):
        calls["n"] += 1
        if calls["n"] > 1:
            real({"partial": True}, path)  # the temporary file exists when the disk fills up
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(obj, path, *a, **k)

    monkeypatch.setattr(checkpoint.torch, "save", save)
    with pytest.raises(WriteError) as err:
        run(compose_config(*TINY, "total_frames=640"), tmp_path)
    message = str(err.value)
    assert "\n" not in message and "No space left on device" in message and "checkpoint_64.pt is intact" in message
    assert err.value.exit_code == 4
    assert load_checkpoint(tmp_path / "models" / "checkpoint_64.pt")["counters"]["frames"] == 64
    assert not list((tmp_path / "models").glob("*.tmp"))


def test_an_unwritable_run_dir_is_one_error_line_before_anything_is_built(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    argv = [sys.executable, "-m", "marl_torchrl.train", *TINY, "total_frames=64", f"hydra.run.dir={blocker}/run"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot create the run dir"), proc.stderr


def test_a_log_that_cannot_be_written_stops_the_run_in_one_line(tmp_path, monkeypatch):
    from marl_torchrl.logging import CSVLogger

    calls, real = {"n": 0}, CSVLogger.log

    def log(self, metrics, step):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, metrics, step)

    monkeypatch.setattr(CSVLogger, "log", log)
    with pytest.raises(WriteError) as err:
        run(compose_config(*TINY, "total_frames=640"), tmp_path)
    assert "\n" not in str(err.value) and "No space left on device" in str(err.value)
    assert "checkpoint_64.pt is intact" in str(err.value)


def test_the_command_line_reports_a_diverging_run_in_one_line_with_exit_3(tmp_path):
    """``algorithm.lr=1e30``: the first updates blow the Q-values up; the run stops instead of training on NaN."""
    argv = [sys.executable, "-m", "marl_torchrl.train", *TINY, "total_frames=6400", "algorithm.lr=1e30",
            f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 3, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "non-finite train/" in errors[0] and "iteration" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "models" / "final_model.pt").exists()
