"""The knobs the reference runs use (epsilon annealed over frames, reward standardisation, updates per
finished episode, the number of final evaluation episodes) and the ``experiment=<task>`` presets."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from tensordict import TensorDict

from marl_torchrl import keys
from marl_torchrl.checkpoint import load_checkpoint
from marl_torchrl.config import compose_config
from marl_torchrl.config.store import group_options
from marl_torchrl.data import ReplayPath, SequenceBuilder
from marl_torchrl.data.synthetic import random_sequences
from marl_torchrl.modules.agents import SharedAgentNet
from marl_torchrl.objectives.reward_norm import RewardStandardiser
from marl_torchrl.objectives.value_decomposition import ValueDecompositionLoss
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

TINY = ["env=matrix/two_step", "env.num_envs=8", "collector.frames_per_batch=32", "replay.batch_size=4",
        "replay.warmup=4", "model.hidden_dim=8", "logger=[csv]"]


def test_epsilon_anneals_over_the_given_frames_whatever_the_budget():
    from marl_torchrl.algorithms import build_algorithm
    from marl_torchrl.envs import describe, make_env

    for frames in (10_000, 1_000_000):
        cfg = compose_config("algorithm=qmix", *TINY, f"total_frames={frames}", "algorithm.eps_anneal_frames=640")
        parts = build_algorithm(cfg, describe(make_env(cfg.env, num_envs=2)), torch.device("cpu"))
        parts.exploration_step(320)
        assert float(parts.exploration_metrics()["rollout/epsilon"]) == pytest.approx(0.525, abs=1e-4)


def test_running_reward_statistics_equal_numpy_over_the_valid_steps_of_all_batches():
    norm, seen = RewardStandardiser(), []
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        r = torch.randn(4, 7, 1, generator=gen) * 3 + 2
        valid = (torch.rand(4, 7, 1, generator=gen) > 0.3).float()
        out = norm(r, valid)
        seen.append(r[valid.bool()].double().numpy())
        flat = np.concatenate(seen)
        assert float(norm.mean) == pytest.approx(flat.mean(), rel=1e-9)
        assert float(norm.var) == pytest.approx(flat.var(), rel=1e-9)
        expected = (r.numpy() - flat.mean()) / np.sqrt(flat.var() + 1e-8)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5)
    norm.eval()
    before = float(norm.count)
    norm(torch.ones(2, 3, 1), torch.ones(2, 3, 1))
    assert float(norm.count) == before  # evaluation mode reads the statistics only


def test_a_standardising_loss_trains_on_standardised_rewards_and_checkpoints_its_statistics():
    torch.manual_seed(0)
    batch = random_sequences(batch=6, seq_len=5, n_agents=2, obs_dim=3, n_actions=4, state_dim=6, hidden_dim=8)
    batch.get(keys.MASK)[0, 3:] = False  # a short episode: its padding is no reward
    net = SharedAgentNet(obs_dim=3, n_agents=2, out_dim=4, hidden_dim=8)
    plain = ValueDecompositionLoss(net, None, gamma=0.9)
    std = ValueDecompositionLoss(net, None, gamma=0.9, standardise_rewards=True)
    std.agent_net_target.load_state_dict(plain.agent_net_target.state_dict())
    out = std(batch)
    valid = batch.get(keys.MASK)[:, :-1]
    picked = batch.get(keys.REWARD)[:, :-1][valid]
    manual = batch.clone()
    manual.set(keys.REWARD, (manual.get(keys.REWARD) - picked.mean()) / (picked.var(unbiased=False) + 1e-8).sqrt())
    assert float(out["loss"]) == pytest.approx(float(plain(manual)["loss"]), rel=1e-5)
    state = std.state_dict()
    assert {"reward_norm.mean", "reward_norm.var", "reward_norm.count"} <= set(state)
    assert float(std.reward_norm.count) == valid.sum()
    fresh = ValueDecompositionLoss(SharedAgentNet(3, 2, 4, hidden_dim=8), None, gamma=0.9, standardise_rewards=True)
    fresh.load_state_dict(state)
    assert float(fresh.reward_norm.mean) == float(std.reward_norm.mean)


def _rollout(envs: int, steps: int, done_at: list[tuple[int, int]]) -> TensorDict:
    done = torch.zeros(envs, steps, 1, dtype=torch.bool)
    for e, t in done_at:
        done[e, t] = True
    return TensorDict({("next", "done"): done}, [envs, steps])


def test_updates_per_episode_follow_the_finished_episodes_and_carry_fractions():
    path = ReplayPath(SequenceBuilder(seq_len=4), capacity=10, batch_size=1, warmup=1, updates_per_episode=0.5)
    path.replay.extend(random_sequences(batch=2, seq_len=4, n_agents=1, obs_dim=1, n_actions=2, state_dim=1))
    path.builder.add = lambda batch: None  # the sequences are already in; count episodes only
    counts = []
    for episodes in (3, 0, 1, 4):
        path.add(_rollout(4, 5, [(i % 4, i // 4) for i in range(episodes)]))
        counts.append(len(list(path.batches())))
    assert counts == [1, 0, 1, 2]  # 1.5 -> 1 (0.5 kept), 0.5 -> 0, 1.0 -> 1, 2.0 -> 2


@pytest.mark.parametrize("overrides, message", [
    (["train.updates_per_episode=1"], "set exactly one of train.updates_per_batch and train.updates_per_episode"),
    (["train.updates_per_batch=null"], "set exactly one of train.updates_per_batch and train.updates_per_episode"),
    (["algorithm.eps_anneal_frames=0"], "algorithm.eps_anneal_frames must be > 0"),
    (["eval.final_episodes=0"], "eval.final_episodes must be > 0"),
    (["eval.final_episodes=100", "eval.interval_frames=0"], "eval.final_episodes=100 needs evaluation on"),
    (["experiment=no_such_task"], "unknown experiment 'no_such_task'"),
])
def test_bad_knob_values_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        compose_config(*TINY, *overrides)


def test_a_per_episode_run_makes_one_update_per_finished_episode_and_evaluates_final_episodes(tmp_path):
    cfg = compose_config("algorithm=vdn", *TINY, "total_frames=96", "train.updates_per_batch=null",
                         "train.updates_per_episode=1", "eval.interval_frames=64", "eval.episodes=4",
                         "eval.final_episodes=10", "algorithm.standardise_rewards=true")
    metrics = run(cfg, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "training_log.csv")))
    # two-step game: every episode is 2 steps, so 16 episodes finish per 32-frame batch of 8 envs
    assert [int(float(r["train/num_updates"])) for r in rows] == [16, 32, 48]
    evals = [r for r in rows if r.get("eval/episodes")]
    assert [int(float(r["eval/episodes"])) for r in evals] == [4, 12]  # the last: 3 rounds of 4 envs >= 10
    assert metrics["eval/episodes"] == 12


def test_the_fraction_of_an_update_owed_survives_a_resume(tmp_path):
    """0.3 updates per episode, 16 episodes per iteration: 4.8 earned, 4 made, 0.8 carried in the checkpoint;
    the resumed iteration makes int(0.8 + 4.8) = 5."""
    per_episode = ["algorithm=vdn", *TINY, "train.updates_per_batch=null", "train.updates_per_episode=0.3",
                   "eval.interval_frames=0"]
    run(compose_config(*per_episode, "total_frames=32"), tmp_path)
    counters = load_checkpoint(tmp_path / "models" / "final_model.pt", run_keys=("counters",))["counters"]
    assert counters["num_updates"] == 4 and counters["updates_owed"] == pytest.approx(0.8)
    run(compose_config(*per_episode, "total_frames=64", f"resume={tmp_path}"), tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "training_log.csv")))
    assert [int(float(r["train/num_updates"])) for r in rows] == [4, 9]


EXPERIMENTS = group_options("experiment")
ALGORITHMS = group_options("algorithm")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_every_algorithm_preset(experiment):
    for algorithm in ALGORITHMS:
        cfg = compose_config(f"experiment={experiment}", f"algorithm={algorithm}")
        assert cfg.algorithm.name == algorithm and cfg.total_frames > 0
        assert cfg.eval.final_episodes is None or cfg.eval.final_episodes >= 100  # reported numbers


def test_an_experiment_sets_its_task_and_the_command_line_still_wins():
    cfg = compose_config("experiment=lbf_8x8_2p_2f_coop", "algorithm=qmix")
    assert (cfg.env.task, cfg.total_frames, cfg.train.updates_per_episode) == ("Foraging-8x8-2p-2f-coop-v3", 2050000, 1.0)
    assert compose_config("experiment=lbf_8x8_2p_2f_coop", "algorithm=vdn").total_frames == 1000000  # per algorithm
    assert cfg.algorithm.eps_anneal_frames == 50000 and cfg.algorithm.standardise_rewards
    cfg = compose_config("experiment=lbf_8x8_2p_2f_coop", "algorithm=qmix", "total_frames=1000",
                         "algorithm.eps_anneal_frames=7")
    assert (cfg.total_frames, cfg.algorithm.eps_anneal_frames) == (1000, 7)
    # a per-algorithm preset that merges into the algorithm's mixer options (simple_spread's unbounded state)
    cfg = compose_config("experiment=simple_spread", "algorithm=qmix", "algorithm.mixer_options.mixing_embed_dim=16")
    assert dict(cfg.algorithm.mixer_options) == {"state_norm": True, "mixing_embed_dim": 16}
    # balance's DOP discount (both action spaces) leaves the other algorithms' alone
    assert compose_config("experiment=balance", "algorithm=dop", "env.continuous_actions=true").algorithm.gamma == 0.9
    assert compose_config("experiment=balance", "algorithm=dop", "algorithm.gamma=0.99").algorithm.gamma == 0.99
    assert compose_config("experiment=balance", "algorithm=qmix").algorithm.gamma == 0.99
    # continuous FACMAC on balance: the stochastic actor; discrete FACMAC keeps epsilon-greedy
    assert compose_config("experiment=balance", "algorithm=facmac", "env.continuous_actions=true").algorithm.stochastic_actor
    assert not compose_config("experiment=balance", "algorithm=facmac").algorithm.stochastic_actor
    assert not compose_config("experiment=balance", "algorithm=facmac", "env.continuous_actions=true",
                              "algorithm.stochastic_actor=false").algorithm.stochastic_actor
