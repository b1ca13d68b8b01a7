"""``algorithm.lr_decay``: every optimiser of every algorithm falls linearly to 0 over ``total_frames``, from
its own starting rate, logged as ``train/lr*``, and a resumed run continues the schedule."""
from __future__ import annotations

import csv

import pytest

from marl_torchrl.algorithms.base import assemble_parts
from marl_torchrl.algorithms.facmac import build_facmac
from marl_torchrl.algorithms.value_decomposition import build_value_decomposition
from marl_torchrl.checkpoint import load_checkpoint
from marl_torchrl.config import FACMACConfig, ModelConfig, ValueDecompositionConfig, compose_config
from marl_torchrl.config.run import seed_dir
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

TINY = ["env=matrix/two_step", "env.num_envs=8", "collector.frames_per_batch=32", "replay.batch_size=4",
        "replay.warmup=4", "model.hidden_dim=8", "logger=[csv]", "eval.interval_frames=0"]
DISCRETE = EnvSpecInfo(2, 3, 6, 4, False, None, None, False, 10)
CONTINUOUS = EnvSpecInfo(2, 3, 6, 2, True, [-1.0, -1.0], [1.0, 1.0], False, 10)


def test_every_optimiser_decays_from_its_own_rate_and_logs_it():
    cfg = FACMACConfig(name="facmac", actor_lr=1e-3, critic_lr=4e-3, lr_decay=True)
    parts = build_facmac(cfg, ModelConfig(hidden_dim=8), CONTINUOUS, "cpu", 100)
    parts.exploration_step(40)  # the first batch's updates run at the starting rates
    assert parts.lr_metrics() == {"train/lr_actor": 1e-3, "train/lr_qvalue": 4e-3}
    parts.exploration_step(40)  # 40 of 100 frames collected before this batch
    assert parts.lr_metrics() == pytest.approx({"train/lr_actor": 6e-4, "train/lr_qvalue": 2.4e-3})
    parts.exploration_step(40), parts.exploration_step(40)  # past the budget: 0, never negative
    assert parts.lr_metrics() == {"train/lr_actor": 0.0, "train/lr_qvalue": 0.0}
    assert parts.modules["exploration"].sigma == pytest.approx(0.1)  # the noise schedule still steps


def test_without_lr_decay_there_is_no_schedule_and_the_rate_stays():
    parts = build_value_decomposition(ValueDecompositionConfig(name="vdn", mixer="vdn"), ModelConfig(hidden_dim=8),
                                      DISCRETE, "cpu", 100)
    parts.exploration_step(90)
    assert "lr_schedule" not in parts.modules and parts.lr_metrics() == {}
    assert parts.optimizers["loss"].param_groups[0]["lr"] == 5e-4


def test_a_run_logs_the_decaying_rate_and_a_resumed_run_continues_it(tmp_path):
    qmix = ["algorithm=qmix", *TINY, "algorithm.lr_decay=true", "algorithm.lr=0.003"]
    run(compose_config(*qmix, "total_frames=96"), tmp_path / "whole")
    run(compose_config(*qmix, "total_frames=64"), tmp_path / "extended")
    run(compose_config(*qmix, "total_frames=96", f"resume={tmp_path / 'extended'}"), tmp_path / "extended")
    logged = {name: [float(r["train/lr"]) for r in csv.DictReader(open(tmp_path / name / "training_log.csv"))]
              for name in ("whole", "extended")}
    # a batch's updates run at 1 - (frames collected before it) / total_frames of the starting rate
    assert logged["whole"] == pytest.approx([0.003, 0.002, 0.001])
    # 2 batches of a 64-frame budget, then resumed (optimiser state and frame count from the checkpoint) with
    # a 96-frame budget: the schedule goes on from 64 frames collected, over the new budget
    assert logged["extended"] == pytest.approx([0.003, 0.0015, 0.001])


def test_each_seed_of_a_k_run_decays_its_own_optimiser_as_it_would_alone(tmp_path):
    qmix = ["algorithm=qmix", *TINY, "algorithm.lr_decay=true", "algorithm.lr=0.003", "total_frames=96", "threads=1"]
    run(compose_config(*qmix, "seed=5", "num_seeds=2"), tmp_path / "k")
    run(compose_config(*qmix, "seed=6"), tmp_path / "alone")
    for path in (seed_dir(tmp_path / "k", 5), seed_dir(tmp_path / "k", 6), tmp_path / "alone"):
        rows = list(csv.DictReader(open(path / "training_log.csv")))
        assert [float(r["train/lr"]) for r in rows] == pytest.approx([0.003, 0.002, 0.001])
    final = [load_checkpoint(p / "models" / "final_model.pt")["parts"]["modules"]["lr_schedule"]["frames"]
             for p in (seed_dir(tmp_path / "k", 6), tmp_path / "alone")]
    assert int(final[0]) == int(final[1]) == 96  # each seed's schedule is checkpointed with its own count


def test_a_builder_that_gives_no_budget_is_refused_in_one_line():
    cfg = ValueDecompositionConfig(name="my_vdn", mixer="vdn", lr_decay=True)
    parts = build_value_decomposition(cfg, ModelConfig(hidden_dim=8), DISCRETE, "cpu", 100)
    with pytest.raises(ConfigError, match="builder of 'my_vdn' does not pass total_frames") as err:
        assemble_parts(cfg, policy=parts.policy, loss=parts.loss, optimizers=parts.optimizers,
                       agent_net=None, info=DISCRETE)
    assert "\n" not in str(err.value)
