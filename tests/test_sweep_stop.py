"""Ctrl-C in a joblib sweep (``marl_torchrl.sweep_stop``): SIGINT to the sweep's process group, as a terminal sends
it, makes the running jobs checkpoint and stop, the queued job never starts, and the sweep exits 130 saying how
to continue. The sweep is started in its own session and signalled once both jobs have logged an iteration
(polling their logs, never timing anything)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from marl_torchrl.config.launchers import missing_extra
from marl_torchrl.faults import newest_checkpoint

TINY = ["algorithm=vdn", "env=matrix/two_step", "env.num_envs=8", "collector.frames_per_batch=32",
        "replay.batch_size=4", "replay.warmup=4", "eval.interval_frames=0", "model.hidden_dim=8",
        "train.updates_per_batch=2", "checkpoint.interval_frames=1000000", "total_frames=100000000"]
ENV = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


@pytest.mark.skipif(missing_extra("joblib") is not None, reason=missing_extra("joblib") or "")
def test_ctrl_c_checkpoints_the_running_jobs_and_starts_no_other(tmp_path):
    argv = [sys.executable, "-m", "marl_torchrl.train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            *TINY, "seed=0,1,2", "resume=auto", f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=s${seed}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    logs = [tmp_path / f"s{s}" / "training_log.csv" for s in (0, 1)]
    for _ in range(12000):
        if all(log.exists() and len(log.read_text().splitlines()) > 1 for log in logs):
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    for s in (0, 1):
        ckpt = newest_checkpoint(tmp_path / f"s{s}")
        assert ckpt is not None and ckpt.name.startswith("checkpoint_"), err[-3000:]
        assert f"job {s} ({tmp_path / f's{s}'}): interrupted by SIGINT at" in err
    assert f"job 2 ({tmp_path / 's2'}): not started: the sweep was interrupted" in err
    assert not (tmp_path / "s2" / "training_log.csv").exists() and newest_checkpoint(tmp_path / "s2") is None
    assert "run the same command with resume=auto to continue" in err
