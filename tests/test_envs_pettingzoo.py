"""Parallel PettingZoo envs behind the env face: keys, shapes, done/truncated, check_env_specs, team
reward, continuous actions, action masks (a hand-written env), envs without state, seeding, bad input,
and a tiny QMIX run end to end."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from families import skip_module_if_family_missing
from torchrl.data import Bounded, Categorical
from torchrl.envs.utils import check_env_specs

from marl_torchrl import keys
from marl_torchrl.envs import describe, make_env
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

skip_module_if_family_missing("pettingzoo")
from gymnasium import spaces  # noqa: E402  (pettingzoo's dependency)
from pettingzoo import ParallelEnv  # noqa: E402

CFG = {"family": "pettingzoo", "task": "mpe2.simple_spread_v3", "kwargs": {"max_cycles": 25}}


def _flags(td):
    return td["next", "done"], td["next", "terminated"], td["next", "truncated"]


def test_face_and_truncation_at_max_cycles():
    env = make_env({**CFG, "team_reward": "sum"}, num_envs=3, seed=0)
    info = describe(env)
    assert (info.n_agents, info.obs_dim, info.state_dim, info.n_actions, info.max_steps) == (3, 18, 54, 5, 25)
    assert not info.continuous and not info.has_action_mask
    assert isinstance(env.full_action_spec[keys.ACTION], Categorical)
    check_env_specs(env)
    td = env.rollout(60, break_when_any_done=False)
    assert env.batch_size == (3,) and td[keys.OBS].shape == (3, 60, 3, 18) and td[keys.OBS].dtype == torch.float32
    assert td[keys.ACTION].shape == (3, 60, 3) and td[keys.ACTION].dtype == torch.int64
    assert td["state"].shape == (3, 60, 54) and keys.ACTION_MASK not in td.keys(True)
    assert td["next", "agents", "reward"].shape == (3, 60, 3, 1)
    done, terminated, truncated = _flags(td)
    assert done.shape == (3, 60, 1) and done.dtype == torch.bool
    assert done.eq(terminated | truncated).all() and not (terminated & truncated).any()
    assert not terminated.any()  # the time limit is truncation
    assert done.squeeze(-1).nonzero()[:, 1].unique().tolist() == [24, 49]  # every 25 steps, all copies
    assert torch.allclose(td["next", "reward"], td["next", "agents", "reward"].sum(-2))
    assert td["next", "step_count"][:, 24].eq(25).all() and td["step_count"][:, 25].eq(0).all()
    reset = env.reset()  # the state is the env's own state() (in mpe2: the observations concatenated)
    for i, copy in enumerate(env.base_env.envs):
        assert torch.equal(reset["state"][i], torch.as_tensor(copy.state()))


def test_team_reward_mean_and_the_default_time_limit():
    env = make_env({"family": "pettingzoo", "task": "mpe/simple_spread_v3", "team_reward": "mean"}, num_envs=2, seed=1)
    assert describe(env).max_steps == 25  # mpe2's default max_cycles, read off the env
    td = env.rollout(5)
    assert torch.allclose(td["next", "reward"], td["next", "agents", "reward"].mean(-2))


def test_continuous_actions():
    env = make_env({**CFG, "kwargs": {"max_cycles": 10, "continuous_actions": True}}, num_envs=2, seed=0)
    info = describe(env)
    assert info.continuous and info.n_actions is None
    assert isinstance(env.full_action_spec[keys.ACTION], Bounded)
    assert info.action_low.shape == (3, 5) and info.action_low.eq(0).all() and info.action_high.eq(1).all()
    check_env_specs(env)
    td = env.rollout(12, break_when_any_done=False)
    assert td[keys.ACTION].shape == (2, 12, 3, 5) and td[keys.ACTION].dtype == torch.float32
    assert td["next", "truncated"][:, 9].all() and not td["next", "terminated"].any()


class MaskedGame(ParallelEnv):
    """Two agents, observations ``{"observation", "action_mask"}`` (or the mask in infos), no ``state()``.

    Action ``t % 4`` is forbidden at step ``t``; agent ``a`` earns ``a + 1`` per step. ``term_at``: both
    agents terminate at that step; ``leave_at``: agent ``b`` terminates then and agent ``a`` plays on.
    """

    metadata = {"name": "masked_game"}

    def __init__(self, max_cycles=6, term_at=None, leave_at=None, mask_in="obs"):
        self.possible_agents, self.max_cycles = ["a", "b"], max_cycles
        self.term_at, self.leave_at, self.mask_in = term_at, leave_at, mask_in
        self.t, self.agents, self.rng, self.masked_taken = 0, [], np.random.default_rng(), 0
        box = spaces.Box(-1, 1, (3,), np.float32)
        self._obs_space = spaces.Dict({"observation": box, "action_mask": spaces.MultiBinary(4)}) if mask_in == "obs" else box

    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return spaces.Discrete(4)

    def _mask(self):
        mask = np.ones(4, dtype=np.int8)
        mask[self.t % 4] = 0
        return mask

    def _observe(self):
        obs = {g: self.rng.uniform(-1, 1, 3).astype(np.float32) for g in self.agents}
        if self.mask_in == "obs":
            obs = {g: {"observation": o, "action_mask": self._mask()} for g, o in obs.items()}
        infos = {g: {"action_mask": self._mask()} if self.mask_in == "info" else {} for g in self.agents}
        return obs, infos

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t, self.agents = 0, list(self.possible_agents)
        return self._observe()

    def step(self, actions):
        assert set(actions) == set(self.agents), (actions, self.agents)  # only live agents act
        self.masked_taken += sum(not self._mask()[actions[g]] for g in actions)
        self.t += 1
        rewards = {g: float(self.possible_agents.index(g) + 1) for g in self.agents}
        term = {g: self.t == self.term_at or (g == "b" and self.t == self.leave_at) for g in self.agents}
        trunc = {g: self.t >= self.max_cycles and not term[g] for g in self.agents}
        obs, infos = self._observe()
        self.agents = [g for g in self.agents if not (term[g] or trunc[g])]
        return obs, rewards, term, trunc, infos


@pytest.fixture
def masked_game(monkeypatch):
    module = types.ModuleType("masked_game_v0")
    module.parallel_env = MaskedGame
    monkeypatch.setitem(sys.modules, "masked_game_v0", module)
    return {"family": "pettingzoo", "task": "masked_game_v0", "team_reward": "sum"}


def _masked_policy(td):
    """A random action among the allowed ones."""
    logits = torch.rand(td[keys.ACTION_MASK].shape).masked_fill(~td[keys.ACTION_MASK], -1.0)
    return td.set(keys.ACTION, logits.argmax(-1))


@pytest.mark.parametrize("mask_in", ["obs", "info"])
def test_action_masks_and_state_from_observations(masked_game, mask_in):
    env = make_env({**masked_game, "kwargs": {"max_cycles": 6, "mask_in": mask_in}}, num_envs=3, seed=0)
    info = describe(env)
    assert (info.n_agents, info.obs_dim, info.state_dim, info.n_actions, info.max_steps) == (2, 3, 6, 4, 6)
    assert info.has_action_mask
    check_env_specs(env)  # random actions, masked ones too
    for copy in env.base_env.envs:
        copy.masked_taken = 0
    td = env.rollout(14, policy=_masked_policy, break_when_any_done=False)
    assert all(copy.masked_taken == 0 for copy in env.base_env.envs)  # the game's mask reached the policy
    mask = td[keys.ACTION_MASK]
    assert mask.shape == (3, 14, 2, 4) and mask.dtype == torch.bool
    step = td["step_count"].squeeze(-1)  # the game's own step counter, reset with it
    assert (~mask).nonzero()[:, -1].eq((step % 4).repeat_interleave(2, -1).flatten()).all()
    assert torch.equal(td["state"], td[keys.OBS].flatten(-2))  # no state(): the observations concatenated
    assert td["next", "reward"].eq(3.0).all()  # 1 + 2, summed
    done, terminated, truncated = _flags(td)
    assert done.squeeze(-1).nonzero()[:, 1].unique().tolist() == [5, 11] and not terminated.any()


def test_termination_and_agents_that_leave_early(masked_game):
    td = make_env({**masked_game, "kwargs": {"term_at": 3}}, num_envs=2, seed=0).rollout(
        8, policy=_masked_policy, break_when_any_done=False)
    done, terminated, truncated = _flags(td)
    assert terminated.squeeze(-1).nonzero()[:, 1].unique().tolist() == [2, 5] and not truncated.any()
    assert done.eq(terminated).all()
    # agent b leaves at step 2: zero observation, reward and an all-true mask until the episode ends (truncated)
    td = make_env({**masked_game, "kwargs": {"leave_at": 2, "max_cycles": 4}}, num_envs=2, seed=0).rollout(
        4, policy=_masked_policy, break_when_any_done=False)
    done, terminated, truncated = _flags(td)
    assert done[:, :3].sum() == 0 and truncated[:, 3].all() and not terminated.any()
    b = td["next", "agents"][:, 2:, 1]
    assert b["observation"].eq(0).all() and b["reward"].eq(0).all() and b["action_mask"].all()
    assert td["next", "reward"][:, :2].eq(3).all() and td["next", "reward"][:, 2:].eq(1).all()


def test_seeding_is_reproducible_and_copies_differ():
    def obs(seed):
        env = make_env(CFG, num_envs=3, seed=seed)
        torch.manual_seed(0)  # the same random actions
        return env.rollout(30, break_when_any_done=False)[keys.OBS]

    a, b, c = obs(5), obs(5), obs(6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0, 0], a[1, 0]) and not torch.equal(a[:, 26], a[:, 1])


def test_worker_processes():
    env = make_env({**CFG, "parallel": "process", "kwargs": {"max_cycles": 5}}, num_envs=2, seed=0)
    try:
        info = describe(env)
        assert env.batch_size == (2,) and (info.n_agents, info.state_dim, info.max_steps) == (3, 54, 5)
        td = env.rollout(7, break_when_any_done=False)
        assert td[keys.OBS].shape == (2, 7, 3, 18) and not torch.equal(td[keys.OBS][0], td[keys.OBS][1])
        assert td["next", "truncated"].squeeze(-1).nonzero()[:, 1].tolist() == [4, 4]
    finally:
        env.close()


@pytest.mark.parametrize("cfg, message", [
    ({"task": "mpe/simple_spred_v3"}, r"unknown PettingZoo task 'mpe/simple_spred_v3' \(no module mpe2.simple_spred_v3; mpe2 has: .*simple_spread_v3"),
    ({"task": "no_such_package.env_v0"}, "unknown PettingZoo task 'no_such_package.env_v0'"),
    ({"task": "classic/tictactoe_v3"}, "has no parallel_env"),
    ({"task": "mpe/simple_tag_v3"}, r"agents differ in observation space \(adversary_0: .*agent_0"),
    ({"task": "classic/rps_v2"}, "only Box observations"),
    ({"kwargs": {"max_cylces": 25}}, "bad kwargs for PettingZoo task 'mpe2.simple_spread_v3': .*max_cylces"),
    ({"kwargs": [1]}, "kwargs must be a mapping"),
    ({"parallel": "threads"}, "parallel must be serial or process"),
    ({"max_cycles": 25}, "unknown key"),
])
def test_bad_input(cfg, message):
    with pytest.raises(ConfigError, match=message) as err:
        make_env({**CFG, **cfg})
    assert "\n" not in str(err.value)


def test_missing_task_dependency_is_not_an_unknown_task(monkeypatch):
    monkeypatch.setitem(sys.modules, "Box2D", None)  # as if not installed
    for name in [m for m in sys.modules if m.startswith("pettingzoo.sisl.multiwalker")]:  # imported before
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ConfigError, match="'sisl/multiwalker_v9' needs a package that is not installed: .*Box2D"):
        make_env({**CFG, "task": "sisl/multiwalker_v9"})


@pytest.mark.parametrize("missing, task", [("pettingzoo", "mpe2.simple_spread_v3"), ("mpe2", "mpe/simple_spread_v3"),
                                           ("pettingzoo", "sisl/pursuit_v5")])
def test_missing_extra_names_it(monkeypatch, missing, task):
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    with pytest.raises(ConfigError, match=r'needs the pettingzoo extra: pip install "marl-torchrl\[pettingzoo\]"'):
        make_env({**CFG, "task": task})


def test_tiny_qmix_run(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=qmix", "env=pettingzoo/simple_spread", "env.num_envs=4", "collector.frames_per_batch=100",
                    "total_frames=200", "replay.batch_size=4", "replay.warmup=4", "train.updates_per_batch=2",
                    "eval.episodes=2", "eval.interval_frames=100", "model.hidden_dim=16"])
    metrics = run(cfg, tmp_path)
    assert "eval/ep_reward" in metrics and "train/loss" in metrics
