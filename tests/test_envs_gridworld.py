"""GridWorld25: the face (keys, shapes, dtypes, done/truncated), check_env_specs, the rules (walls,
collecting next to food pays, the episode ends when the food is gone or at the limit), many envs, and
a tiny QMIX run end to end."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from torchrl.envs.utils import check_env_specs

from marl_torchrl import keys
from marl_torchrl.envs import describe, make_env
from marl_torchrl.envs.gridworld import COLLECT, GridWorld25
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

CFG = {"family": "gridworld", "task": "gridworld25"}


def _set(env, agents, food):
    """Place agents and food by hand in a bare env with one copy."""
    env.agent_pos[0] = torch.tensor(agents)
    env.food_pos[0] = torch.tensor(food)
    env.present[0] = True


def _step(env, actions):
    """One step from wherever the env is (no reset)."""
    td = TensorDict({keys.ACTION: torch.tensor([actions])}, batch_size=env.batch_size)
    return env.step(td)["next"]


def test_face_and_specs():
    env = make_env(CFG, num_envs=5, seed=0)
    info = describe(env)
    assert (info.n_agents, info.obs_dim, info.n_actions, info.state_dim, info.max_steps) == (4, 18, 6, 21, 100)
    assert not info.continuous and not info.has_action_mask
    check_env_specs(env)
    td = env.rollout(120, break_when_any_done=False)
    assert td[keys.OBS].shape == (5, 120, 4, 18) and td[keys.OBS].dtype == torch.float32
    assert td["next", "reward"].shape == (5, 120, 1)
    # a random policy never clears the board here: every episode is truncated at 100 steps, not terminated
    assert td["next", "truncated"][:, 99].all() and not td["next", "terminated"].any()
    assert (td["step_count"][:, 100] == 0).all()  # auto-reset after the limit


def test_walls_block_moves():
    env = GridWorld25(size=5, n_agents=2, n_food=1)
    env.reset()
    _set(env, [[0, 0], [4, 4]], [[2, 2]])
    _step(env, [3, 4])  # left at x = 0, right at x = 4
    assert env.agent_pos[0].tolist() == [[0, 0], [4, 4]]
    _step(env, [2, 1])  # down at y = 0, up at y = 4
    assert env.agent_pos[0].tolist() == [[0, 0], [4, 4]]
    _step(env, [1, 2])
    assert env.agent_pos[0].tolist() == [[0, 1], [4, 3]]


def test_collecting_next_to_food_pays_and_far_away_does_not():
    env = GridWorld25(size=7, n_agents=2, n_food=2, step_cost=0.0)
    env.reset()
    _set(env, [[1, 1], [6, 6]], [[2, 2], [4, 4]])
    out = _step(env, [COLLECT, COLLECT])  # agent 0 is diagonal to food 0; agent 1 is two cells from food 1
    assert out["reward"].item() == 1.0 and env.present[0].tolist() == [False, True]
    out = _step(env, [COLLECT, COLLECT])  # food 0 is gone: nothing more to collect there
    assert out["reward"].item() == 0.0
    out = _step(env, [0, 0])  # no-op next to food pays nothing
    assert out["reward"].item() == 0.0
    assert out["items_collected"].tolist() == [[1.0]]  # the episode's count so far


def test_evaluation_reports_the_items_each_episode_collected():
    """``eval/items_collected`` is the mean of the episodes' own counts (read on their last steps), and
    return = items x food_reward - step_cost x length, the identity the reproduction table relies on."""
    from tensordict.nn import TensorDictModule

    from marl_torchrl.envs.face import standard_face
    from marl_torchrl.evaluate import evaluate_policy

    env = standard_face(GridWorld25(num_envs=16, size=5, n_agents=2, n_food=3), max_steps=20)
    env.set_seed(0)
    always_collect = TensorDictModule(lambda obs: torch.full(obs.shape[:-1], COLLECT), [keys.OBS], [keys.ACTION])
    out = evaluate_policy(env, always_collect)
    assert 0.0 < out["eval/items_collected"] < 3.0  # some food starts out of reach of a still agent
    items_from_return = out["eval/ep_reward"] + 0.01 * out["eval/ep_length"]
    assert out["eval/items_collected"] == pytest.approx(items_from_return, abs=1e-5)


def test_episode_terminates_when_all_food_is_gone():
    env = GridWorld25(size=5, n_agents=2, n_food=2, step_cost=0.01)
    env.reset()
    _set(env, [[0, 0], [4, 4]], [[1, 1], [3, 3]])
    out = _step(env, [COLLECT, COLLECT])
    assert out["reward"].item() == pytest.approx(2.0 - 0.01)
    assert out["terminated"].item() and out["done"].item()


def test_cooperative_collection_needs_enough_agents():
    env = GridWorld25(size=5, n_agents=2, n_food=1, agents_to_collect=2, step_cost=0.0)
    env.reset()
    _set(env, [[1, 1], [4, 4]], [[2, 2]])
    assert _step(env, [COLLECT, COLLECT])["reward"].item() == 0.0  # only agent 0 is next to it
    _set(env, [[1, 1], [3, 3]], [[2, 2]])
    assert _step(env, [COLLECT, COLLECT])["reward"].item() == 1.0


def test_thousands_of_envs_in_one_batch():
    env = make_env(CFG, num_envs=4096, seed=1)
    td = env.rollout(5, break_when_any_done=False)
    assert td[keys.OBS].shape == (4096, 5, 4, 18)
    pos = env.base_env.agent_pos
    assert pos.min() >= 0 and pos.max() <= 24


def test_seeding_is_reproducible():
    a = make_env(CFG, num_envs=3, seed=7).reset()[keys.STATE]
    b = make_env(CFG, num_envs=3, seed=7).reset()[keys.STATE]
    c = make_env(CFG, num_envs=3, seed=8).reset()[keys.STATE]
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("bad, message", [
    ({"task": "gridworld50"}, "unknown gridworld task"),
    ({"agents_to_collect": 5}, "agents_to_collect"),
    ({"foods": 3}, "unknown key"),
])
def test_bad_config(bad, message):
    with pytest.raises(ConfigError, match=message):
        make_env({**CFG, **bad})


def test_tiny_qmix_run(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=qmix", "env=gridworld/gridworld25", "env.num_envs=4", "env.max_steps=10",
                    "collector.frames_per_batch=40", "total_frames=120", "replay.batch_size=4", "replay.warmup=4",
                    "train.updates_per_batch=2", "eval.episodes=2", "eval.interval_frames=80", "model.hidden_dim=16"])
    metrics = run(cfg, tmp_path)
    assert "eval/ep_reward" in metrics and "train/loss" in metrics
    assert 0.0 <= metrics["eval/items_collected"] <= 4.0
