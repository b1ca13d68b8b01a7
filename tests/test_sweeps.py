"""Hydra multirun (``marl-train -m``): one run dir per job under one sweep dir, and a job whose config is bad
fails alone, in one line, while the others train; the sweep exits with its status. With Hydra's basic
launcher, and with the launchers of the ``sweep`` extra (joblib, submitit_local) and the ``ray`` extra
(a local Ray); a launcher test skips, naming the pip line, when its extra is missing."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from marl_torchrl.config.launchers import missing_extra

TINY = ["env=matrix/two_step", "total_frames=64", "env.num_envs=8", "collector.frames_per_batch=32",
        "replay.batch_size=4", "replay.warmup=4", "model.hidden_dim=8"]
NO_EVAL = ["eval.interval_frames=0"]
EVAL = ["eval.interval_frames=32", "eval.episodes=2"]  # marl-report's default metric is eval/ep_reward
ENV = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
       "RAY_AUTH_MODE": "disabled"}
LAUNCHERS = {  # hydra/launcher option -> its overrides for a test on a 2-core machine
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
    "ray": ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false"],
}
GRID = ["qmix_two_step_s0_2", "qmix_two_step_s1_3", "vdn_two_step_s0_0", "vdn_two_step_s1_1"]


def _launcher(name):
    reason = missing_extra(name)
    return pytest.param(name, marks=pytest.mark.skipif(reason is not None, reason=reason or ""), id=name)


def _sweep(tmp_path, *args, evaluate=False):
    argv = [sys.executable, "-m", "marl_torchrl.train", "-m", *args, *TINY, *(EVAL if evaluate else NO_EVAL),
            f"hydra.sweep.dir={tmp_path}"]
    return subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=600)


def _finished(sweep_dir):
    return sorted(p.name for p in sweep_dir.iterdir() if (p / "models" / "final_model.pt").exists())


def test_a_grid_of_algorithms_and_seeds_gets_one_run_dir_per_job(tmp_path):
    proc = _sweep(tmp_path, "algorithm=vdn,qmix", "seed=0,1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert jobs == GRID
    for job in jobs:
        assert (tmp_path / job / "models" / "final_model.pt").exists()
        assert (tmp_path / job / "training_log.csv").exists() and (tmp_path / job / "configs" / "hparams.json").exists()


def test_a_bad_job_fails_alone_in_one_line_and_the_sweep_says_so(tmp_path):
    proc = _sweep(tmp_path, "algorithm.lr=0.001,-1,0.002")
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "job 1" in errors[0] and "algorithm.lr must be > 0" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert _finished(tmp_path) == ["qmix_two_step_s0_0", "qmix_two_step_s0_2"]


@pytest.mark.parametrize("launcher", [_launcher(n) for n in ("joblib", "ray")])  # submitit_local: the bad-job case
def test_a_grid_through_a_launcher_plugin_gets_its_run_dirs_and_a_report(launcher, tmp_path):
    sweep, out = tmp_path / "sweep", tmp_path / "report"
    proc = _sweep(sweep, *LAUNCHERS[launcher], "algorithm=vdn,qmix", "seed=0,1", evaluate=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _finished(sweep) == GRID
    report = subprocess.run([sys.executable, "-m", "marl_torchrl.report", str(sweep), "--out", str(out),
                             "--reps", "50"], capture_output=True, text=True, env=ENV, timeout=300)
    assert report.returncode == 0, report.stderr
    with open(out / "final.csv", newline="") as f:
        rows = {(r["algorithm"], r["task"]): r["n_runs"] for r in csv.DictReader(f)}
    assert rows == {("qmix", "matrix/two_step"): "2", ("vdn", "matrix/two_step"): "2"}
    assert {"curves_frames.png", "prob_improvement.csv", "report.md"} <= {p.name for p in out.iterdir()}


@pytest.mark.parametrize("launcher", [_launcher(n) for n in ("joblib", "submitit_local")])
def test_a_bad_job_fails_alone_through_a_launcher_plugin(launcher, tmp_path):
    """The failed job runs in another process (a loky worker, a submitit job): the sweep still prints its one
    line once (submitit's jobs write theirs to their log files) and exits with its status."""
    proc = _sweep(tmp_path, *LAUNCHERS[launcher], "algorithm.lr=0.001,-1")
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "job 1" in errors[0] and "algorithm.lr must be > 0" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert _finished(tmp_path) == ["qmix_two_step_s0_0"]


@pytest.mark.parametrize("launcher, module, extra", [
    ("joblib", "hydra_plugins.hydra_joblib_launcher", "sweep"),
    ("submitit_slurm", "submitit", "sweep"),
    ("ray", "ray", "ray"),
])
def test_a_launcher_whose_extra_is_missing_is_one_line_before_anything_runs(launcher, module, extra, monkeypatch,
                                                                           tmp_path, capsys):
    from marl_torchrl.train import main

    monkeypatch.setitem(sys.modules, module, None)  # importlib.util.find_spec now finds nothing
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["-m", f"hydra/launcher={launcher}", "algorithm=vdn,qmix", *TINY])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (f'error: hydra/launcher={launcher} needs the {extra} extra: '
                                       f'pip install -e ".[{extra}]"\n')
    assert list(tmp_path.iterdir()) == []
