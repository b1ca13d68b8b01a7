"""Bad checkpoints are one line naming the checkpoint, through ``resume=`` and through ``marl-evaluate``.

One tiny real run (VDN on the two-step matrix game) writes a checkpoint; each case derives a bad file
from it: cut to half its bytes, random bytes, an empty file, a directory, a torch file that is no
checkpoint, one from another algorithm or env than the config asks for, and one whose config comes
from another version of the config (a key this version does not know, a required key gone).
In-process, ``run(cfg)`` with ``resume=`` and ``evaluate.main`` must raise/print a one-line
:class:`ConfigError` naming the path; a few cases also go through both command lines in a subprocess
(exit 2, one ``error:`` line, no traceback).
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from marl_torchrl.config import compose_config
from marl_torchrl.evaluate import main as evaluate_main
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

TINY = ["algorithm=vdn", "env=matrix/two_step", "env.num_envs=8", "collector.frames_per_batch=32",
        "replay.batch_size=4", "replay.warmup=4", "eval.interval_frames=0", "model.hidden_dim=8",
        "checkpoint.interval_frames=1000000", "threads=1"]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A real checkpoint of a 64-frame run."""
    run_dir = tmp_path_factory.mktemp("good_run")
    run(compose_config(*TINY, "total_frames=64"), run_dir)
    path = run_dir / "models" / "final_model.pt"
    assert path.is_file()
    return path


def _edit_config(good: Path, path: Path, edit) -> None:
    ckpt = torch.load(good, map_location="cpu", weights_only=False)
    edit(ckpt["config"])
    torch.save(ckpt, path)


def _truncated(good, path):
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _directory(good, path):
    path.mkdir()


CASES = {  # name -> how to make the bad file at `path` from the good checkpoint
    "truncated": _truncated,
    "random_bytes": lambda good, path: path.write_bytes(random.Random(0).randbytes(4096)),
    "empty_file": lambda good, path: path.write_bytes(b""),
    "directory": _directory,
    "torch_file_not_a_checkpoint": lambda good, path: torch.save({"weights": torch.zeros(3)}, path),
    "unknown_config_key": lambda good, path: _edit_config(
        good, path, lambda c: c["env"].__setitem__("team_reward", "mean")),
    "required_config_key_gone": lambda good, path: _edit_config(good, path, lambda c: c["algorithm"].pop("name")),
}
# Cases not one line today (reported; checkpoint.py is not this file's to change): name -> (reason, raises).
def _case(name: str, good: Path, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.pt"
    CASES[name](good, path)
    return path


def _assert_one_line_naming(text: str, path: Path) -> None:
    assert "\n" not in text.strip(), f"not one line: {text!r}"
    assert str(path) in text, f"the message does not name {path}: {text!r}"


@pytest.mark.parametrize("name", list(CASES))
def test_resume_from_a_bad_checkpoint_is_one_line(name, good, tmp_path):
    path = _case(name, good, tmp_path)
    with pytest.raises(ConfigError) as err:
        run(compose_config(*TINY, "total_frames=128", f"resume={path}"), tmp_path / "run")
    _assert_one_line_naming(str(err.value), path)
    assert not (tmp_path / "run" / "models").exists(), "a refused resume wrote checkpoints"


@pytest.mark.parametrize("name", list(CASES))
def test_evaluate_a_bad_checkpoint_is_one_error_line(name, good, tmp_path, capsys):
    path = _case(name, good, tmp_path)
    with pytest.raises(SystemExit) as exit_:
        evaluate_main([f"checkpoint={path}", "episodes=2"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    _assert_one_line_naming(err, path)


@pytest.mark.parametrize("other", ["algorithm=qmix", "env=matrix/one_step"])
def test_resume_from_another_algorithm_or_env_names_both(other, good, tmp_path):
    """A checkpoint of VDN on two_step, resumed by a config that asks for another algorithm or env."""
    with pytest.raises(ConfigError) as err:
        run(compose_config(*TINY, other, "total_frames=128", f"resume={good}"), tmp_path / "run")
    text = str(err.value)
    _assert_one_line_naming(text, good)
    assert "vdn on two_step" in text and other.split("/")[-1].split("=")[-1] in text, text


def test_evaluate_weights_that_do_not_fit_their_config_is_one_error_line(good, tmp_path, capsys):
    """A checkpoint whose config says hidden_dim=16 but whose networks are 8 wide."""
    path = tmp_path / "misfit.pt"
    _edit_config(good, path, lambda c: c["model"].__setitem__("hidden_dim", 16))
    with pytest.raises(SystemExit) as exit_:
        evaluate_main([f"checkpoint={path}", "episodes=2"])
    assert exit_.value.code == 2
    _assert_one_line_naming(capsys.readouterr().err, path)


def test_resume_into_networks_of_another_size_is_one_line(good, tmp_path):
    with pytest.raises(ConfigError) as err:
        run(compose_config(*TINY, "model.hidden_dim=16", "total_frames=128", f"resume={good}"), tmp_path / "run")
    _assert_one_line_naming(str(err.value), good)


def _cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", f"marl_torchrl.{module}", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.mark.parametrize("module,name", [("train", "truncated"), ("evaluate", "random_bytes"),
                                         ("evaluate", "unknown_config_key")])
def test_the_command_lines_print_one_error_line(module, name, good, tmp_path):
    path = _case(name, good, tmp_path)
    if module == "train":
        proc = _cli("train", *TINY, "total_frames=128", f"resume={path}", f"hydra.run.dir={tmp_path / 'run'}",
                    cwd=tmp_path)
    else:
        proc = _cli("evaluate", f"checkpoint={path}", "episodes=2", cwd=tmp_path)
    context = f"\n--- stdout:\n{proc.stdout[-2000:]}\n--- stderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode == 2, context
    assert "Traceback" not in proc.stdout + proc.stderr, context
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), context
    _assert_one_line_naming(lines[0], path)


def test_a_good_checkpoint_still_resumes_and_evaluates(good, tmp_path, capsys):
    """The control: the same fixture's checkpoint, unspoiled, resumes to the new budget and evaluates."""
    copy = tmp_path / "copy.pt"
    shutil.copy(good, copy)
    metrics = run(compose_config(*TINY, "total_frames=128", f"resume={copy}"), tmp_path / "run")
    assert metrics["frames"] >= 128
    assert "eval/ep_reward" in evaluate_main([f"checkpoint={copy}", "episodes=2"])
