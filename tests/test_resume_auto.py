"""``resume=auto``: a run in its own dir is skipped when finished, continued from its newest complete checkpoint
when interrupted, and started when there is nothing to continue; so the same sweep command, run again, picks up
where the last one stopped. In-process runs of a tiny matrix game, and one sweep run twice through the CLI."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

from marl_torchrl.checkpoint import auto_resume, run_status
from marl_torchrl.config import compose_config
from marl_torchrl.train import run

TINY = ["algorithm=vdn", "env=matrix/two_step", "env.num_envs=8", "collector.frames_per_batch=32",
        "replay.batch_size=4", "replay.warmup=4", "eval.interval_frames=0", "model.hidden_dim=8",
        "train.updates_per_batch=2", "checkpoint.interval_frames=64"]
ENV = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def _auto(run_dir, frames, capsys):
    metrics = run(compose_config(*TINY, f"total_frames={frames}", "resume=auto"), run_dir)
    return metrics, capsys.readouterr().out


def _rows(run_dir):
    with open(run_dir / "training_log.csv") as f:
        return [(int(r["step"]), int(float(r["frames"]))) for r in csv.DictReader(f)]


def test_a_fresh_dir_starts_and_a_stale_log_is_dropped(tmp_path, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "training_log.csv").write_text("step,frames\n1,32\n2,64\n3,96\n")  # stopped before a checkpoint
    metrics, out = _auto(run_dir, 64, capsys)
    assert "resume=auto: no checkpoint in" in out and "stale training_log.csv removed" in out
    assert metrics["frames"] == 64
    assert _rows(run_dir) == [(1, 32), (2, 64)]
    assert run_status(run_dir, 64)[0] == "done"


def test_a_finished_run_is_skipped_untouched(tmp_path, capsys):
    run_dir = tmp_path / "r"
    _auto(run_dir, 64, capsys)
    final = run_dir / "models" / "final_model.pt"
    before = (final.stat().st_mtime_ns, (run_dir / "training_log.csv").read_text())
    metrics, out = _auto(run_dir, 64, capsys)
    assert metrics == {}
    assert out.strip() == f"resume=auto: {run_dir} is finished ({final} reaches total_frames=64); skipped"
    assert (final.stat().st_mtime_ns, (run_dir / "training_log.csv").read_text()) == before


def test_a_run_that_spent_its_wall_clock_budget_is_finished(tmp_path, capsys):
    run_dir = tmp_path / "r"
    metrics = run(compose_config(*TINY, "total_frames=640", "train.max_seconds=1e-9", "resume=auto"), run_dir)
    assert metrics["frames"] == 32  # one iteration, then the budget
    final = run_dir / "models" / "final_model.pt"
    assert run_status(run_dir, 640, max_seconds=1e-9) == ("done", final)
    assert run_status(run_dir, 640)[0] == "resume"  # without the clock, 32 of 640 frames is unfinished
    capsys.readouterr()
    assert run(compose_config(*TINY, "total_frames=640", "train.max_seconds=1e-9", "resume=auto"), run_dir) == {}
    assert "or train.max_seconds=1e-09); skipped" in capsys.readouterr().out


def test_an_interrupted_run_continues_from_its_newest_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "r"
    _auto(run_dir, 128, capsys)
    for name in ("final_model.pt", "checkpoint_128.pt"):  # as if stopped just after the checkpoint at 64 frames
        (run_dir / "models" / name).unlink()
    assert run_status(run_dir, 128) == ("resume", run_dir / "models" / "checkpoint_64.pt")
    metrics, out = _auto(run_dir, 128, capsys)
    assert f"resume=auto: continuing {run_dir} from {run_dir / 'models' / 'checkpoint_64.pt'}" in out
    assert metrics["frames"] == 128
    assert _rows(run_dir) == [(1, 32), (2, 64), (3, 96), (4, 128)]  # rows after the checkpoint written once
    # a larger budget continues a finished run from its final model
    assert run_status(run_dir, 192) == ("resume", run_dir / "models" / "final_model.pt")


def test_other_resume_values_pass_through(tmp_path):
    cfg = compose_config(*TINY, "total_frames=64")
    assert auto_resume(cfg, tmp_path) == (cfg, "")


def test_the_same_sweep_again_skips_its_finished_jobs(tmp_path):
    argv = [sys.executable, "-m", "marl_torchrl.train", "-m", *TINY, "total_frames=64", "seed=0,1", "resume=auto",
            f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=vdn_s${seed}"]
    first = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("resume=auto: no checkpoint in") == 2
    finals = [tmp_path / f"vdn_s{s}" / "models" / "final_model.pt" for s in (0, 1)]
    stamps = [f.stat().st_mtime_ns for f in finals]
    again = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [line for line in again.stdout.splitlines() if line.startswith("resume=auto:")] == [
        f"resume=auto: {tmp_path / f'vdn_s{s}'} is finished ({finals[s]} reaches total_frames=64); skipped"
        for s in (0, 1)]
    assert [f.stat().st_mtime_ns for f in finals] == stamps
