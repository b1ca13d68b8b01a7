"""FastVmasWrapper's outputs are torchrl VmasWrapper's, key for key and value for value."""
from __future__ import annotations

import copy

import pytest
import torch
import vmas
from tensordict import TensorDictBase
from torchrl.envs.libs.vmas import VmasWrapper
from vmas.simulator.environment.environment import Environment

from marl_torchrl.envs.vmas_wrapper import FastVmasWrapper

CASES = [("balance", {"n_agents": 4}, False), ("navigation", {"n_agents": 3}, False),
         ("transport", {"n_agents": 4}, True), ("wheel", {"n_agents": 4}, False),
         ("simple_tag", {}, False)]  # simple_tag: two groups, torchrl's own code path


def _same(a: TensorDictBase, b: TensorDictBase) -> None:
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    for key in a.keys(True, True):
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
    for key in a.keys(True):
        if isinstance(a[key], TensorDictBase):
            assert a[key].batch_size == b[key].batch_size, key


@pytest.mark.parametrize("task,kwargs,continuous", CASES)
def test_steps_and_full_resets_match_vmas_wrapper(task, kwargs, continuous):
    envs = []
    for cls in (FastVmasWrapper, VmasWrapper):  # built and reset one after the other: same start
        raw = vmas.make_env(task, num_envs=5, device="cpu", continuous_actions=continuous, seed=1, **kwargs)
        env = cls(raw, categorical_actions=True)
        envs.append((env, env.reset()))
    (fast, ta), (ref, tb) = envs
    assert (fast._order is None) == (task == "simple_tag")
    assert fast.full_observation_spec == ref.full_observation_spec
    _same(ta, tb)
    for step in range(6):
        action = ref.full_action_spec.rand()
        ta, tb = fast.step(ta.update(action)), ref.step(tb.update(action))
        _same(ta, tb)
        ta, tb = ta["next"].clone(), tb["next"].clone()
        if step == 3:
            drawn = copy.deepcopy(Environment.vmas_random_state)  # VMAS's one random stream for all envs
            ta = fast.reset(ta)
            Environment.vmas_random_state[:] = drawn
            tb = ref.reset(tb)
            _same(ta, tb)
    fast.check_env_specs()
