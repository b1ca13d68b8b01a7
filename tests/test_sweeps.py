"""Hydra multirun (``marl-train -m``) with the basic launcher: one run dir per job under one sweep dir, and
a job whose config is bad fails alone, in one line, while the others train."""
from __future__ import annotations

import os
import subprocess
import sys

TINY = ["env=matrix/two_step", "total_frames=64", "env.num_envs=8", "collector.frames_per_batch=32",
        "replay.batch_size=4", "replay.warmup=4", "eval.interval_frames=0", "model.hidden_dim=8"]
ENV = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def _sweep(tmp_path, *args):
    argv = [sys.executable, "-m", "marl_torchrl.train", "-m", *args, *TINY, f"hydra.sweep.dir={tmp_path}"]
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=600)


def test_a_grid_of_algorithms_and_seeds_gets_one_run_dir_per_job(tmp_path):
    proc = _sweep(tmp_path, "algorithm=vdn,qmix", "seed=0,1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert jobs == ["qmix_two_step_s0_2", "qmix_two_step_s1_3", "vdn_two_step_s0_0", "vdn_two_step_s1_1"]
    for job in jobs:
        assert (tmp_path / job / "models" / "final_model.pt").exists()
        assert (tmp_path / job / "training_log.csv").exists() and (tmp_path / job / "configs" / "hparams.json").exists()


def test_a_bad_job_fails_alone_in_one_line_and_the_sweep_says_so(tmp_path):
    proc = _sweep(tmp_path, "algorithm.lr=0.001,-1,0.002")
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "job 1" in errors[0] and "algorithm.lr must be > 0" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    done = sorted(p.name for p in tmp_path.iterdir() if (p / "models" / "final_model.pt").exists())
    assert done == ["qmix_two_step_s0_0", "qmix_two_step_s0_2"]
