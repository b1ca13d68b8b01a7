"""Batched partial resets of VMAS: the envs that are not reset continue exactly as with torchrl's
one-at-a-time ``reset_at``; the reset ones start fresh episodes."""
from __future__ import annotations

import pytest
import torch
import vmas
from torchrl.envs.libs.vmas import VmasWrapper

from marl_torchrl.envs.vmas_wrapper import FastVmasWrapper

SCENARIOS = {"balance": {"n_agents": 4}, "navigation": {"n_agents": 3}, "transport": {"n_agents": 4},
             "wheel": {"n_agents": 4}}
E = 6


def _pair(task: str):
    envs = []
    for cls in (FastVmasWrapper, VmasWrapper):  # built and reset one after the other: same start
        raw = vmas.make_env(task, num_envs=E, device="cpu", continuous_actions=False, seed=3, **SCENARIOS[task])
        env = cls(raw, categorical_actions=True, group_map={"agents": [a.name for a in raw.agents]})
        envs.append((env, env.reset()))
    return envs


def _step(env, td, action):
    td = td.clone()
    td["agents", "action"] = action
    return env.step(td)["next"]


@pytest.mark.parametrize("task", list(SCENARIOS))
def test_kept_envs_continue_exactly(task):
    (a, ta), (b, tb) = _pair(task)
    assert torch.equal(ta["agents", "observation"], tb["agents", "observation"])
    gen = torch.Generator().manual_seed(0)
    n = a.full_action_spec["agents", "action"].space.n
    shape = ta["agents", "observation"].shape[:-1]
    for _ in range(4):
        act = torch.randint(0, n, shape, generator=gen)
        ta, tb = _step(a, ta, act), _step(b, tb, act)
    reset = torch.tensor([True, False, True, True, False, False])
    ta = a.reset(ta.set("_reset", reset.view(E, 1)))
    tb = b.reset(tb.set("_reset", reset.view(E, 1)))
    assert a._env.steps[reset].eq(0).all() and a._env.steps[~reset].eq(4).all()
    for _ in range(5):
        act = torch.randint(0, n, shape, generator=gen)
        ta, tb = _step(a, ta, act), _step(b, tb, act)
        for key in (("agents", "observation"), ("agents", "reward"), "done"):
            assert torch.equal(ta[key][~reset], tb[key][~reset]), key
        assert torch.isfinite(ta["agents", "observation"]).all()


def test_reset_envs_get_fresh_starts():
    (a, ta), _ = _pair("balance")
    first = ta["agents", "observation"].clone()
    for _ in range(3):
        ta = a.rand_step(ta)["next"]
    reset = torch.tensor([True, True, False, False, False, False])
    ta = a.reset(ta.set("_reset", reset.view(E, 1)))
    obs = ta["agents", "observation"]
    assert not torch.equal(obs[:2], first[:2])  # new random starts, not the old ones
    moved = obs[~reset]
    assert not torch.equal(moved, first[~reset])  # the kept envs stay where 3 steps took them


def test_single_env_resets_and_pool_refills_keep_the_rest_exact():
    """One-env resets go through the pool too; more resets than E refill it, and kept envs stay exact."""
    (a, ta), (b, tb) = _pair("balance")
    gen = torch.Generator().manual_seed(1)
    shape = ta["agents", "observation"].shape[:-1]
    starts, ever = [], torch.zeros(E, dtype=torch.bool)
    for i in range(2 * E + 1):  # more single resets than the pool holds
        act = torch.randint(0, 9, shape, generator=gen)
        ta, tb = _step(a, ta, act), _step(b, tb, act)
        reset = torch.zeros(E, dtype=torch.bool)
        reset[i % E] = True
        ta = a.reset(ta.set("_reset", reset.view(E, 1)))
        tb = b.reset(tb.set("_reset", reset.view(E, 1)))
        ever |= reset
        starts.append(ta["agents", "observation"][i % E].clone())
        assert a._env.steps[i % E] == 0 and a._env.steps[~reset].gt(0).all()
        for key in (("agents", "observation"), "done"):  # envs never reset: as with reset_at
            assert torch.equal(ta[key][~ever], tb[key][~ever]), key
    assert len({tuple(s.flatten().tolist()) for s in starts}) == len(starts)  # every start is fresh
    assert torch.isfinite(torch.stack(starts)).all()


@pytest.mark.parametrize("task", list(SCENARIOS))
def test_reset_outputs_from_the_pool_are_what_the_world_holds(task):
    """A partial reset returns the outputs captured when the pool was filled; for the reset envs they
    equal the observations, infos and dones computed from the simulator's state after the copy."""
    (a, ta), _ = _pair(task)
    refills = 0
    for round_ in range(5):  # 2 resets a round from a pool of 6: the 4th round refills it
        for _ in range(2):
            ta = a.rand_step(ta)["next"]
        reset = torch.zeros(E, dtype=torch.bool)
        reset[[round_, (round_ + 3) % E]] = True
        fresh = a._pool.fresh if a._pool is not None else None
        out = a.reset(ta.clone().set("_reset", reset.view(E, 1)))
        refills += a._pool.fresh is not fresh
        now = a._read()
        for key in now.keys(True, True):
            assert torch.equal(out[key][reset], now[key][reset]), key
        ta = out
    assert refills == 2  # the first fill and one refill
