"""Loggers (csv, wandb offline, tensorboard) and the training plots."""
import csv
import math

import numpy as np
import time

import pytest
import torch

from marl_torchrl.logging import CSV_NAME, build_loggers
from marl_torchrl.plots import plot_training, read_log
from marl_torchrl.registry import ConfigError


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_rows_columns_and_late_columns(tmp_path):
    logger = build_loggers(["csv"], tmp_path, {"seed": 0})
    for i in range(6):
        metrics = {"frames": 100 * (i + 1), "rollout/ep_reward": float(i), "time/fps": 10.0}
        if i % 3 == 2:  # eval only every third iteration, first seen at row 2 -> header widens
            metrics.update({"eval/ep_reward": 2.0 * i, "eval/std_ep_reward": 0.5})
        if i == 4:
            metrics["train/loss"] = 0.125
        logger.log(metrics, step=i)
        # flushed on every call: readable before close, the last row already there
        assert _rows(tmp_path / CSV_NAME)[-1][0] == str(i)
    logger.close()

    rows = _rows(tmp_path / CSV_NAME)
    header = rows[0]
    assert header == ["step", "frames", "rollout/ep_reward", "time/fps", "eval/ep_reward",
                      "eval/std_ep_reward", "train/loss"]
    assert sum(r == header for r in rows) == 1  # one header only
    assert all(len(r) == len(header) for r in rows)
    assert len(rows) == 7
    log = read_log(tmp_path / CSV_NAME)
    assert list(log["step"]) == list(range(6))
    assert np.isnan(log["eval/ep_reward"][[0, 1, 3, 4]]).all()
    assert log["eval/ep_reward"][5] == 10.0
    assert rows[1][header.index("eval/ep_reward")] == ""  # empty cell where absent
    assert rows[1][header.index("frames")] == "100"  # ints stay ints
    assert log["train/loss"][4] == 0.125 and np.isnan(log["train/loss"][5])


def test_csv_resume_appends_and_keeps_old_rows(tmp_path):
    with build_loggers(["csv"], tmp_path, {}) as logger:
        logger.log({"frames": 10, "train/loss": 1.0}, step=0)
        logger.log({"frames": 20, "train/loss": 0.5}, step=1)
    with build_loggers(["csv"], tmp_path, {}) as logger:
        logger.log({"frames": 30, "train/loss": 0.25}, step=2)
        logger.log({"frames": 40, "train/loss": 0.2, "eval/ep_reward": 1.0}, step=3)
    rows = _rows(tmp_path / CSV_NAME)
    assert rows[0] == ["step", "frames", "train/loss", "eval/ep_reward"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    assert rows[1] == ["0", "10", "1.0", ""]
    assert rows[4] == ["3", "40", "0.2", "1.0"]


def test_values_tensors_numpy_none_and_reserved_step(tmp_path):
    with build_loggers(["csv"], tmp_path, {}) as logger:
        logger.log({"train/loss": torch.tensor(0.5), "frames": np.int64(7), "train/q_value": np.float32(2.0),
                    "eval/ep_reward": None, "rollout/ep_reward": float("nan")}, step=torch.tensor(3))
        with pytest.raises(ValueError, match="step"):
            logger.log({"step": 1.0}, step=1)
        with pytest.raises(TypeError, match="train/loss"):
            logger.log({"train/loss": "high"}, step=1)
    rows = _rows(tmp_path / CSV_NAME)
    assert rows[0] == ["step", "train/loss", "frames", "train/q_value", "rollout/ep_reward"]
    assert rows[1][:4] == ["3", "0.5", "7", "2.0"] and math.isnan(float(rows[1][4]))


def test_unknown_logger_is_one_line_config_error_and_builds_nothing(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_loggers(["csv", "mlflow"], tmp_path / "run", {})
    msg = str(err.value)
    assert "\n" not in msg and "mlflow" in msg
    for known in ("csv", "wandb", "tensorboard"):
        assert known in msg
    assert not (tmp_path / "run").exists()


def _tb_scalars(tb_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return acc, [(e.step, e.value) for e in acc.Scalars(tag)]


def test_tensorboard_event_file_reads_back(tmp_path):
    with build_loggers(["tensorboard"], tmp_path, {}) as logger:
        for i in range(3):
            logger.log({"train/loss": 1.0 / (i + 1), "frames": 100 * i}, step=i)
    acc, loss = _tb_scalars(tmp_path / "tensorboard", "train/loss")
    assert [s for s, _ in loss] == [0, 1, 2]
    assert loss[1][1] == pytest.approx(0.5)
    assert set(acc.Tags()["scalars"]) == {"train/loss", "frames"}


def test_wandb_offline_and_same_names_everywhere(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    names = ["rollout/ep_reward", "train/loss", "frames", "time/fps"]
    logger = build_loggers(["csv", "wandb", "tensorboard"], tmp_path, {"lr": 5e-4, "mixer": "qmix"},
                           wandb_mode="offline", project="marl-torchrl-tests", run_name="unit")
    for i in range(3):
        logger.log({n: float(i + k) for k, n in enumerate(names)}, step=i)
    logger.close()
    logger.close()  # idempotent

    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    run_id = (tmp_path / "wandb" / "run_id").read_text().strip()  # kept for a resumed run
    assert runs[0].name.endswith("-" + run_id)
    data = list(runs[0].glob("run-*.wandb"))
    assert len(data) == 1
    # wandb's service process may still be flushing the offline file when finish() returns
    deadline = time.monotonic() + 20
    blob = data[0].read_bytes()
    while not all(n.encode() in blob for n in names) and time.monotonic() < deadline:
        time.sleep(0.2)
        blob = data[0].read_bytes()
    for name in names:  # wandb got the same metric names ...
        assert name.encode() in blob
    assert b"marl-torchrl-tests" in blob and b"unit" in blob
    assert _rows(tmp_path / CSV_NAME)[0] == ["step", *names]  # ... as the CSV ...
    acc, _ = _tb_scalars(tmp_path / "tensorboard", "train/loss")
    assert set(acc.Tags()["scalars"]) == set(names)  # ... and tensorboard


def _synthetic_log(path, n=200, eval_every=10):
    rng = np.random.default_rng(0)
    with build_loggers(["csv"], path.parent, {}) as logger:
        for i in range(n):
            m = {
                "frames": 1000 * (i + 1),
                "rollout/ep_reward": float(np.tanh(i / 60) * 10 + rng.normal()),
                "rollout/epsilon": max(0.05, 1 - i / 100),
                "train/loss": float(np.exp(-i / 50) + 0.1 * rng.random()),
                "train/td_error": float(np.exp(-i / 70) + 0.05 * rng.random()),
                "train/q_value": float(np.tanh(i / 60) * 9),
            }
            if i % eval_every == 0:
                m.update({"eval/ep_reward": float(np.tanh(i / 60) * 10), "eval/std_ep_reward": 1.0})
            logger.log(m, step=i)


def test_plot_training_full_log(tmp_path):
    _synthetic_log(tmp_path / CSV_NAME)
    png = plot_training(tmp_path / CSV_NAME, tmp_path / "training_plots.png")
    assert png == tmp_path / "training_plots.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("text", [
    "step,rollout/ep_reward\n0,1.0\n1,2.0\n2,\n",  # no frames, no loss/q/epsilon/td -> "no data" panels
    "step,frames,train/td_error\n0,10,0.3\n1,20,0.2\n",  # only the twin-axis series
    "step\n",  # header only
    "",  # empty file
])
def test_plot_training_missing_columns_does_not_crash(tmp_path, text):
    (tmp_path / CSV_NAME).write_text(text)
    png = plot_training(tmp_path / CSV_NAME, tmp_path / "plots" / "training_plots.png")
    assert png.exists() and png.stat().st_size > 10_000
