"""PQN in ``num_seeds=K`` (issue 19): the K seeds' PQN learners as one computation follow their single runs.

- the stacked PQN loss and its gradients equal each seed's own ``PQNLoss`` (IQL with an MLP, VDN and QMIX with
  GRU agents, LayerNorm and input normalisation, reward standardisation);
- K stacked learners start from exactly the parameters of each seed built alone, and after several steps with
  a decaying learning rate and a clip that bites follow each seed's own ``gradient_step`` to float rounding;
- through the loop (VMAS balance with batched collection and GRU PQN-QMIX; the two-step game with per-seed
  collection and MLP PQN-IQL), each seed of a K = 2 run starts with its single run's parameters bit for bit,
  logs the same rollouts, epsilon, update counts and evaluations, losses within 1e-4, parameters within 1e-5,
  and resumes (the whole K-run) as its single run resumes;
- ``marl-train ... num_seeds=2`` writes seed dirs that ``marl-report`` reads as 2 runs, and with ``resume=auto``
  the same command again skips them.
"""
from __future__ import annotations

import csv

import pytest
import torch

from marl_torchrl.checkpoint import load_checkpoint
from marl_torchrl.config import ModelConfig, PQNConfig, compose_config
from marl_torchrl.config.run import seed_dir
from marl_torchrl.envs import EnvSpecInfo
from marl_torchrl.loop import setup
from marl_torchrl.objectives.pqn import random_rollout
from marl_torchrl.report.cli import main as report_main
from marl_torchrl.seeds import StackedLearners
from marl_torchrl.seeds.loop import seed_config, setup_seeds
from marl_torchrl.seeds.pqn_loss import StackedPQNLoss
from marl_torchrl.train import main, run
from marl_torchrl.update import gradient_step

INFO = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=4, continuous=False, action_low=None,
                   action_high=None, has_action_mask=False, max_steps=10)
KINDS = {
    "pqn_iql_mlp": (PQNConfig(name="pqn_iql", mixer=None), ModelConfig(type="mlp", hidden_dim=8)),
    "pqn_vdn_gru_norm": (PQNConfig(name="pqn_vdn", mixer="vdn"),
                         ModelConfig(hidden_dim=8, layer_norm=True, input_norm="layer")),
    "pqn_qmix_gru_std": (PQNConfig(name="pqn_qmix", mixer="qmix", standardise_rewards=True, td_lambda=0.6,
                                   mixer_options={"mixing_embed_dim": 8}), ModelConfig(hidden_dim=8, layer_norm=True)),
    "pqn_nonmonotonic_mlp": (PQNConfig(name="pqn_qmix", mixer="nonmonotonic"), ModelConfig(type="mlp", hidden_dim=8)),
}


def _rollouts(k: int, envs: int = 4, steps: int = 6) -> list:
    return [random_rollout(envs=envs, steps=steps, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8)
            for _ in range(k)]


def _alone(seed: int, cfg, model):
    torch.manual_seed(seed)
    from marl_torchrl.algorithms.pqn import build_pqn

    return build_pqn(cfg, model, INFO, "cpu", total_frames=200)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stacked_pqn_loss_and_gradients_equal_each_seeds_own(kind):
    cfg, model = KINDS[kind]
    stack = StackedLearners.build([0, 1, 2], cfg, model, INFO, "cpu", total_frames=200)
    assert isinstance(stack.loss, StackedPQNLoss)
    batches = _rollouts(3)
    out = stack.loss(batches)
    out["loss"].sum().backward()
    for k, part in enumerate(stack.parts):
        alone = _alone(k, cfg, model)  # built alone from seed k: the same parameters, bit for bit
        assert all(p.equal(q) for p, q in zip(part.loss.parameters(), alone.loss.parameters()))
        mine = alone.loss(batches[k])
        mine["loss"].backward()
        for name in mine.keys():
            assert torch.allclose(out[k][name], mine[name], rtol=1e-5, atol=1e-6), name
        for (name, p), q in zip(part.loss.named_parameters(), alone.loss.parameters()):
            assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name


def test_pqn_learners_follow_each_single_learner():
    """Five minibatch steps on each of two rollouts: each seed's lr decays on its own schedule, a clip of 0.05
    bites, and every seed's parameters and optimiser step count stay its single learner's."""
    cfg, model = PQNConfig(name="pqn_qmix", mixer="qmix", grad_clip=0.05), ModelConfig(hidden_dim=8, layer_norm=True)
    seeds = [4, 5, 6]
    stack = StackedLearners.build(seeds, cfg, model, INFO, "cpu", total_frames=200)
    alone = [_alone(s, cfg, model) for s in seeds]
    for rollout in range(2):
        batches = _rollouts(3)
        for k in range(3):
            stack.parts[k].exploration_step(24 * (k + 1))  # seeds at different points of their lr schedules
            alone[k].exploration_step(24 * (k + 1))
        for _ in range(5):
            logs = stack.step(batches)
            for k, part in enumerate(alone):
                mine = gradient_step(part, batches[k])
                assert mine["grads"] > 0.05  # the clip bites
                assert logs[k]["loss"] == pytest.approx(mine["loss"].item(), rel=1e-5)
    for k, part in enumerate(alone):
        ours, theirs = stack.parts[k].optimizers["loss"], part.optimizers["loss"]
        assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] < cfg.lr
        for p, q in zip(stack.parts[k].loss.parameters(), part.loss.parameters()):
            assert torch.allclose(p, q, atol=1e-6)
    lrs = [part.optimizers["loss"].param_groups[0]["lr"] for part in stack.parts]
    assert len(set(lrs)) == 3  # one schedule per seed


BALANCE = ["algorithm=pqn_qmix", "env=vmas/balance", "env.max_steps=5", "algorithm.mixer_options.mixing_embed_dim=8"]
TWO_STEP = ["algorithm=pqn_iql", "env=matrix/two_step", "model.type=mlp", "algorithm.standardise_rewards=true",
            "collector.batch_seeds=false"]  # (the matrix games batch seeds too: this test keeps the per-seed path)
COMMON = ["threads=1", "model.hidden_dim=8", "env.num_envs=4", "collector.frames_per_batch=24", "total_frames=72",
          "algorithm.minibatches=2", "algorithm.epochs=2", "algorithm.grad_clip=0.05", "eval.episodes=2",
          "eval.interval_frames=48", "checkpoint.interval_frames=48"]
EXACT = ["frames", "rollout/ep_reward", "rollout/num_episodes", "rollout/epsilon", "eval/ep_reward",
         "train/num_updates"]
SEEDS = (3, 4)


def _log(d):
    with open(d / "training_log.csv", newline="") as f:
        return list(csv.DictReader(f))


def _params(d):
    return load_checkpoint(d / "models" / "final_model.pt")["parts"]["loss"]


def _same_runs(k_dir, alone_dir, rows: int):
    k_rows, a_rows = _log(k_dir), _log(alone_dir)
    assert len(k_rows) == len(a_rows) == rows
    for k_row, a_row in zip(k_rows, a_rows):
        assert [k_row.get(c) for c in EXACT] == [a_row.get(c) for c in EXACT]
        assert float(k_row["train/loss"]) == pytest.approx(float(a_row["train/loss"]), rel=1e-4, abs=1e-6)
    mine, theirs = _params(k_dir), _params(alone_dir)
    assert list(mine) == list(theirs) and all(torch.allclose(mine[n], theirs[n], atol=1e-5) for n in mine)


def _k_run_and_alone(task, tmp_path) -> None:
    run(compose_config(*task, *COMMON, f"seed={SEEDS[0]}", "num_seeds=2"), tmp_path / "k")
    for s in SEEDS:
        run(compose_config(*task, *COMMON, f"seed={s}"), tmp_path / f"alone_{s}")
        _same_runs(seed_dir(tmp_path / "k", s), tmp_path / f"alone_{s}", rows=3)
    assert not _params(seed_dir(tmp_path / "k", 3))["agent_net.head.weight"].equal(
        _params(seed_dir(tmp_path / "k", 4))["agent_net.head.weight"])


def test_pqn_qmix_gru_seed_in_batched_k_run_equals_seed_alone(tmp_path):
    _k_run_and_alone(BALANCE, tmp_path)


def test_pqn_iql_seed_in_k_run_starts_follows_and_resumes_as_alone(tmp_path):
    task = TWO_STEP
    cfg = compose_config(*task, *COMMON, f"seed={SEEDS[0]}", "num_seeds=2")
    stacked = setup_seeds(cfg, tmp_path / "start")
    for k, seed in enumerate(SEEDS):  # the start: each seed's parameters are its single run's, bit for bit
        alone = setup(seed_config(cfg, seed), tmp_path / f"start_{seed}")
        mine, theirs = stacked.runs[k].parts.loss.state_dict(), alone.parts.loss.state_dict()
        assert list(mine) == list(theirs) and all(mine[n].equal(theirs[n]) for n in mine)
        alone.loggers.close()
    for r in stacked.runs:
        r.loggers.close()
    _k_run_and_alone(task, tmp_path)
    # the whole K-run resumes from its seeds' checkpoints (lr schedule and epsilon included) as each seed alone
    run(compose_config(*task, *COMMON, f"seed={SEEDS[0]}", "num_seeds=2", f"resume={tmp_path / 'k'}",
                       "total_frames=120"), tmp_path / "k")
    for s in SEEDS:
        run(compose_config(*task, *COMMON, f"seed={s}", f"resume={tmp_path / f'alone_{s}'}", "total_frames=120"),
            tmp_path / f"alone_{s}")
        _same_runs(seed_dir(tmp_path / "k", s), tmp_path / f"alone_{s}", rows=5)


def test_marl_train_k_run_of_pqn_writes_seed_dirs_that_report_reads(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "argv", ["marl-train"])
    argv = ["algorithm=pqn_vdn", "env=matrix/two_step", *COMMON, "num_seeds=2", "seed=0", "resume=auto",
            f"hydra.run.dir={tmp_path / 'k'}", "hydra.output_subdir=null", "hydra/job_logging=disabled",
            "hydra/hydra_logging=disabled"]
    main(argv)
    out = capsys.readouterr().out
    assert out.count("resume=auto: no checkpoint in") == 2 and out.count("done: 72 frames") == 2
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["seed_0", "seed_1"]
    assert report_main([str(tmp_path / "k"), "--out", str(tmp_path / "rep"), "--reps", "50"]) == 0
    assert "report: 2 runs, 0 skipped" in capsys.readouterr().out
    with open(tmp_path / "rep" / "final.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["algorithm"], row["task"], row["n_runs"]) == ("pqn_vdn", "matrix/two_step", "2")
    main(argv)  # the same command again: both seeds finished, skipped
    assert capsys.readouterr().out.count("is finished") == 2
