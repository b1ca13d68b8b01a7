"""Tiny end-to-end runs: what a run leaves behind (DESIGN.md), loggers, resume, evaluation, rendering.

Most runs go through :func:`marl_torchrl.train.run` with a config composed as the CLI would (fast);
one goes through the real ``python -m marl_torchrl.train`` command line, and its final model through
``python -m marl_torchrl.evaluate``.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from marl_torchrl.config import CONFIG_DIR
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

# 4 envs x 10 steps = 40 frames per iteration, 3 iterations; eval at 80 frames (and at the end).
# threads=1: tensors this small gain nothing from more threads, and 2 threads on a 2-core machine that
# is busy with anything else run several times slower.
TINY = [
    "threads=1",
    "env=vmas/balance", "env.num_envs=4", "env.max_steps=10", "collector.frames_per_batch=40",
    "total_frames=120", "replay.batch_size=4", "replay.warmup=4", "train.updates_per_batch=2",
    "eval.episodes=2", "eval.interval_frames=80", "model.hidden_dim=16", "checkpoint.interval_frames=40",
]
# DESIGN.md "What a run leaves behind": metric names every run logs (eval/battle_won is SMAX only).
METRICS = [
    "rollout/ep_reward", "rollout/ep_length", "rollout/epsilon", "rollout/num_episodes",
    "train/loss", "train/td_error", "train/q_value", "train/grads", "train/num_updates",
    "eval/ep_reward", "eval/std_ep_reward", "eval/ep_length", "frames",
]
EVAL_METRICS = ["eval/ep_reward", "eval/std_ep_reward", "eval/ep_length"]
SUBPROCESS_ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "MPLBACKEND": "Agg",
                  "OMP_NUM_THREADS": "1"}


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=[*TINY, *overrides])


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert all(len(r) == len(header) for r in rows), "ragged CSV"
    return header, [dict(zip(header, r)) for r in rows[1:]]


def column(rows: list[dict[str, str]], name: str) -> list[float]:
    return [float(r[name]) for r in rows if r.get(name, "") != ""]


def check_run_dir(run_dir: Path, *, frames: int, algorithm: str, checkpoints=(40, 80, 120)) -> list[dict]:
    """The layout of DESIGN.md; returns the CSV rows."""
    hparams = json.loads((run_dir / "configs" / "hparams.json").read_text())
    assert hparams["algorithm"]["name"] == algorithm
    assert hparams["total_frames"] == frames and hparams["env"]["task"] == "balance"
    assert "${" not in json.dumps(hparams), "hparams.json is not resolved"
    for f in checkpoints:
        assert (run_dir / "models" / f"checkpoint_{f}.pt").is_file(), sorted(os.listdir(run_dir / "models"))
    assert (run_dir / "models" / "final_model.pt").is_file()
    png = run_dir / "training_plots.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    header, rows = read_csv(run_dir / "training_log.csv")
    assert header[0] == "step"
    missing = [m for m in METRICS if m not in header]
    assert not missing, f"missing columns {missing}; header: {header}"
    assert any(h.startswith("time/") for h in header), header
    for row in rows:
        for name, cell in row.items():
            if cell != "":
                assert math.isfinite(float(cell)), f"{name}={cell!r} in row {row}"
    for name in METRICS:
        assert column(rows, name), f"column {name} is never filled"
    assert max(column(rows, "frames")) == frames
    frames_col = column(rows, "frames")
    assert frames_col == sorted(frames_col), "frames go backwards"
    eps = column(rows, "rollout/epsilon")
    assert all(0.0 <= e <= 1.0 for e in eps)
    assert all(n >= 0 for n in column(rows, "train/num_updates"))
    return rows


@pytest.mark.parametrize(
    "algorithm,model,loggers",
    [
        ("iql", "gru", "[csv]"),
        ("vdn", "gru", "[csv]"),
        ("qmix", "gru", "[csv,wandb,tensorboard]"),
        ("qmix", "mlp", "[csv]"),
    ],
)
def test_tiny_run_leaves_the_design_layout(tmp_path, algorithm, model, loggers):
    cfg = compose_cfg(f"algorithm={algorithm}", f"model.type={model}", f"logger={loggers}", "wandb.mode=offline")
    metrics = run(cfg, tmp_path)
    assert metrics["frames"] == 120
    rows = check_run_dir(tmp_path, frames=120, algorithm=algorithm)
    assert column(rows, "train/num_updates")[-1] == 6  # 3 iterations x 2 updates (warm after the first)
    if "wandb" in loggers:
        offline = list((tmp_path / "wandb").glob("offline-run-*"))
        assert offline, f"no wandb offline run dir in {tmp_path / 'wandb'}"
        assert any(p.suffix == ".wandb" for p in offline[0].iterdir())
    if "tensorboard" in loggers:
        events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0


def _train(run_dir: Path, *overrides: str) -> dict:
    return run(compose_cfg(*overrides), run_dir)


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """80 frames with the buffer in the checkpoints, then ``resume=checkpoint_80.pt resume_buffer=true``
    to 160 frames in the same run dir. Returns the run dir and the CSV rows before the resume.

    eval.interval_frames=120: the first run ends between evaluations, so its last iteration evaluates anyway.
    """
    threads = torch.get_num_threads()
    run_dir = tmp_path_factory.mktemp("resume")
    _train(run_dir, "total_frames=80", "checkpoint.save_buffer=true", "eval.interval_frames=120")
    _, before = read_csv(run_dir / "training_log.csv")
    ckpt = run_dir / "models" / "checkpoint_80.pt"
    assert ckpt.is_file()
    metrics = _train(run_dir, f"resume={ckpt}", "resume_buffer=true", "total_frames=160",
                     "checkpoint.save_buffer=true", "eval.interval_frames=120")
    torch.set_num_threads(threads)
    return run_dir, before, metrics


def test_resume_with_buffer_continues_frames_and_csv(resumed_run):
    run_dir, before, metrics = resumed_run
    assert max(column(before, "frames")) == 80
    assert metrics["frames"] == 160
    header, after = read_csv(run_dir / "training_log.csv")
    assert after[: len(before)] == [{**r, **{k: "" for k in header if k not in r}} for r in before]
    new = after[len(before):]
    assert column(new, "frames")[0] == 120, "the frame counter restarted instead of continuing"
    assert max(column(new, "frames")) == 160
    steps = [int(r["step"]) for r in after]
    assert steps == sorted(steps), "steps go backwards after resume"
    # updates continue too: the replay came back, so the first resumed iteration already trains
    updates_before = column(before, "train/num_updates")[-1]
    assert column(new, "train/num_updates")[0] == updates_before + 2
    # the wall clock continues too (train.max_seconds counts it over resumes)
    assert column(new, "time/elapsed_s")[0] > column(before, "time/elapsed_s")[-1]
    for f in (120, 160):
        assert (run_dir / "models" / f"checkpoint_{f}.pt").is_file()


def test_resume_does_not_reuse_step_numbers(resumed_run):
    run_dir, _, _ = resumed_run
    _, rows = read_csv(run_dir / "training_log.csv")
    steps = [int(r["step"]) for r in rows]
    assert len(set(steps)) == len(steps), f"repeated steps: {steps}"


def test_resume_without_buffer(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _train(first, "total_frames=80")
    metrics = _train(second, f"resume={first / 'models' / 'final_model.pt'}", "total_frames=160")
    assert metrics["frames"] == 160
    _, rows = read_csv(second / "training_log.csv")
    assert column(rows, "frames")[0] == 120
    assert (second / "models" / "final_model.pt").is_file()


def test_max_seconds_ends_the_run_like_total_frames(tmp_path):
    """A wall-clock budget every iteration exceeds: one iteration, then the final evaluation and model;
    resuming it at the same budget has nothing to do."""
    metrics = _train(tmp_path, "train.max_seconds=1e-9", "eval.interval_frames=1000")
    assert metrics["frames"] == 40 and "eval/ep_reward" in metrics
    assert (tmp_path / "models" / "final_model.pt").is_file()
    _, rows = read_csv(tmp_path / "training_log.csv")
    assert len(rows) == 1
    with pytest.raises(ConfigError, match="nothing to do: .* train.max_seconds"):
        _train(tmp_path, f"resume={tmp_path / 'models' / 'final_model.pt'}", "train.max_seconds=1e-9")


def _cli_train_then_evaluate(run_dir: Path) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess | None]:
    """``python -m marl_torchrl.train ... hydra.run.dir=<run_dir>``, then ``python -m marl_torchrl.evaluate``
    on its final model (if training succeeded)."""
    train = subprocess.run(
        [sys.executable, "-m", "marl_torchrl.train", "algorithm=vdn", *TINY, f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, timeout=300, cwd=run_dir.parent, env=SUBPROCESS_ENV,
    )
    if train.returncode != 0:
        return train, None
    evaluate = subprocess.run(
        [sys.executable, "-m", "marl_torchrl.evaluate", f"checkpoint={run_dir / 'models' / 'final_model.pt'}",
         "episodes=4"],
        capture_output=True, text=True, timeout=300, cwd=run_dir, env=SUBPROCESS_ENV,
    )
    return train, evaluate


@pytest.fixture(scope="module", autouse=True)
def _cli_processes(tmp_path_factory):
    """Start the command-line runs when this module's first test starts: they run on the second core
    while the in-process runs (one thread) use the first."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(_cli_train_then_evaluate, run_dir)
        yield run_dir, future
        future.result(timeout=600)  # never leave a child running past the module


@pytest.fixture
def cli_run(_cli_processes):
    """One run of the real command line: ``python -m marl_torchrl.train ... hydra.run.dir=<tmp>``."""
    run_dir, future = _cli_processes
    train, evaluate = future.result(timeout=600)
    assert train.returncode == 0, f"stdout:\n{train.stdout[-3000:]}\nstderr:\n{train.stderr[-3000:]}"
    return run_dir, train, evaluate


def test_cli_run_leaves_the_design_layout(cli_run):
    run_dir, proc, _ = cli_run
    check_run_dir(run_dir, frames=120, algorithm="vdn")
    assert "done: 120 frames" in proc.stdout
    assert not (run_dir.parent / "outputs").exists() and not (run_dir.parent / "runs").exists()


def _printed_metrics(stdout: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(eval/\w+): (\S+)$", stdout, re.M)}


def test_evaluate_cli_prints_eval_metrics(cli_run):
    _, _, proc = cli_run
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    printed = _printed_metrics(proc.stdout)
    for name in EVAL_METRICS:
        assert name in printed and math.isfinite(printed[name]), proc.stdout
    assert 1 <= printed["eval/ep_length"] <= 10  # env.max_steps=10 comes back from the checkpoint
    assert printed["eval/std_ep_reward"] >= 0


def test_evaluate_render_writes_a_gif(cli_run, tmp_path, capsys):
    from marl_torchrl.envs import make_env
    from marl_torchrl.envs.render import RenderError, render_frame
    from marl_torchrl.evaluate import main as evaluate_main

    try:
        render_frame(make_env({"family": "vmas", "task": "balance", "max_steps": 2}, num_envs=1, seed=0))
    except RenderError as err:
        pytest.skip(f"VMAS cannot render on this machine: {err}")
    run_dir = cli_run[0]
    video = tmp_path / "x.gif"
    metrics = evaluate_main([f"checkpoint={run_dir / 'models' / 'final_model.pt'}", "episodes=2", "render=true",
                             f"video={video}"])
    out = capsys.readouterr().out
    assert f"video: {video}" in out
    for name in EVAL_METRICS:
        assert name in metrics and f"{name}: " in out
    assert video.is_file() and video.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    from PIL import Image

    with Image.open(video) as gif:
        assert gif.n_frames >= 2  # the first frame + one per step


def test_evaluate_render_on_a_matrix_game_is_one_error_line(tmp_path, capsys):
    from marl_torchrl.evaluate import main as evaluate_main

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["threads=1", "env=matrix/one_step", "env.num_envs=8",
                                           "collector.frames_per_batch=16", "total_frames=32",
                                           "replay.batch_size=4", "replay.warmup=4", "eval.episodes=2",
                                           "eval.interval_frames=0", "model.hidden_dim=8"])
    run(cfg, tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main([f"checkpoint={tmp_path / 'models' / 'final_model.pt'}", "episodes=2", "render=true",
                       f"video={tmp_path / 'x.gif'}"])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "render" in err[0]


def _readme_python_blocks() -> list[str]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", readme, re.S)


def test_readme_has_python_snippets():
    assert len(_readme_python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(_readme_python_blocks())))
def test_readme_python_snippet_runs(index):
    """The README's "own TorchRL pipeline" examples run as written."""
    code = _readme_python_blocks()[index]
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": f"readme_{index}"})
