"""The last-action input on every env family: the previous action is appended to each agent's
observation (one-hot, or the action vector), zero on an episode's first step, kept across the partial
resets of other envs; and a training run with ``model.last_action=true`` plus its checkpoint evaluation."""
from __future__ import annotations

import pytest
import torch
from families import skip_if_family_missing
from torchrl.envs.utils import check_env_specs

from marl_torchrl import keys
from marl_torchrl.envs import describe, make_env
from marl_torchrl.evaluate import load_policy
from marl_torchrl.train import run


FAMILIES = {
    "matrix": {"family": "matrix", "task": "two_step"},
    "gridworld": {"family": "gridworld", "task": "gridworld25", "max_steps": 6},
    "vmas": {"family": "vmas", "task": "balance", "max_steps": 5, "scenario_kwargs": {"n_agents": 3}},
    "vmas_continuous": {"family": "vmas", "task": "balance", "max_steps": 5, "continuous_actions": True,
                        "scenario_kwargs": {"n_agents": 3}},
    "lbf": {"family": "lbf", "task": "Foraging-8x8-2p-2f-coop-v3"},
    "pettingzoo": {"family": "pettingzoo", "task": "mpe2.simple_spread_v3", "kwargs": {"max_cycles": 6}},
    "smax": {"family": "smax", "task": "3m"},
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_previous_action_is_appended(name):
    skip_if_family_missing(FAMILIES[name])
    plain = describe(make_env(FAMILIES[name], num_envs=4, seed=0))  # 4: SMAX reuses the jitted batch of test_envs_smax
    env = make_env(FAMILIES[name], num_envs=4, seed=0, last_action=True)
    info = describe(env)
    width = info.n_actions if not info.continuous else info.action_low.shape[-1]
    assert info.obs_dim == plain.obs_dim + width
    check_env_specs(env)
    td = env.rollout(8, break_when_any_done=False)  # auto-resets envs that finish
    last = td[keys.OBS][..., plain.obs_dim:]
    action = td[keys.ACTION]
    taken = torch.nn.functional.one_hot(action, width).float() if not info.continuous else action
    first = td["is_init"].squeeze(-1)  # [E, T]: an episode's first step
    assert last[:, 0].eq(0).all()
    assert last[first].eq(0).all()
    # after a step that did not end the episode, the next observation holds the action just taken
    cont = ~first[:, 1:]
    assert torch.equal(last[:, 1:][cont], taken[:, :-1][cont])
    assert torch.equal(td["next", *keys.OBS][..., plain.obs_dim:], taken)


def test_partial_reset_keeps_the_others():
    env = make_env(FAMILIES["matrix"], num_envs=2, last_action=True)
    td = env.reset()
    td[keys.ACTION] = torch.tensor([[1, 0], [0, 1]])
    td = env.step(td)["next"]
    td["_reset"] = torch.tensor([[True], [False]])
    out = env.reset(td)
    assert out[keys.OBS][0, :, 3:].eq(0).all()
    assert out[keys.OBS][1, :, 3:].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_training_and_checkpoint_evaluation_with_last_action(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=qmix", "env=gridworld/gridworld25", "env.num_envs=4", "env.max_steps=10",
                    "model.last_action=true", "model.agent_id=true", "collector.frames_per_batch=40",
                    "total_frames=80", "replay.batch_size=4", "replay.warmup=4", "train.updates_per_batch=2",
                    "eval.episodes=2", "eval.interval_frames=40", "model.hidden_dim=16",
                    "checkpoint.interval_frames=40"])
    metrics = run(cfg, tmp_path)
    assert "eval/ep_reward" in metrics
    env, policy, _, info = load_policy(str(sorted(tmp_path.rglob("*.pt"))[-1]), episodes=2)
    assert info.obs_dim == 18 + 6
    assert env.rollout(3, policy)[keys.OBS].shape[-1] == 24
