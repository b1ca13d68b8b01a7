"""SMAX (JaxMARL) behind the env face: keys, shapes, masks, done/truncated, check_env_specs, partial reset,
battle_won, seeding, bad input, and a tiny QMIX run end to end.

Every env here has 4 copies on 3m, so the jitted reset/step compile once for the whole file."""
from __future__ import annotations

import sys

import pytest
import torch
from families import skip_module_if_family_missing
from tensordict.nn import TensorDictModule
from torchrl.envs.utils import check_env_specs

from marl_torchrl import keys
from marl_torchrl.envs import describe, make_env
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

# Skip without the smax extra. Not importorskip("jaxmarl"): importing jaxmarl directly prints and resets
# sys.stdout/sys.stderr to the real streams (smax.py shields its own import from that); the helper only looks.
skip_module_if_family_missing("smax")
CFG = {"family": "smax", "task": "3m", "num_envs": 4}
E, A, N, STOP, EAST = 4, 3, 8, 4, 1
UNIT = 10  # world-state features per unit: health fraction (0 when dead), x, y, cooldown, 6 type bits


def policy(choose):
    return TensorDictModule(choose, in_keys=[keys.ACTION_MASK], out_keys=[keys.ACTION])


def masked_random(mask):
    return torch.multinomial(mask.flatten(0, 1).float(), 1).view(mask.shape[:-1])


def focus_fire(mask):  # attack the first enemy in range, else walk east (towards the enemy), else stop
    attack = mask[..., 5:]
    return torch.where(attack.any(-1), attack.float().argmax(-1) + 5, torch.where(mask[..., EAST], EAST, STOP))


def check_flags(nxt, limit):
    done, term, trunc = (nxt[k].squeeze(-1) for k in ("done", "terminated", "truncated"))
    assert done.eq(term | trunc).all() and not (term & trunc).any()
    assert nxt["step_count"].max() <= limit  # nobody runs past the limit
    assert nxt["step_count"][trunc].eq(limit).all()


def test_face_masks_and_random_rollout():
    torch.manual_seed(0)
    env = make_env(CFG, seed=0)
    info = describe(env)
    assert (info.n_agents, info.obs_dim, info.state_dim, info.n_actions, info.max_steps) == (A, 75, 72, N, 100)
    assert info.has_action_mask and not info.continuous
    check_env_specs(env)
    td = env.rollout(60, policy(masked_random), break_when_any_done=False)
    assert td[keys.OBS].shape == (E, 60, A, 75) and td[keys.OBS].dtype == torch.float32
    assert td["state"].shape == (E, 60, 72) and td[keys.ACTION].dtype == torch.int64
    assert td["state"].abs().max() <= 1.5  # scaled world state, about [0, 1] (raw positions reach 32)
    mask = td[keys.ACTION_MASK]
    assert mask.shape == (E, 60, A, N) and mask.dtype == torch.bool and mask.any(-1).all()
    assert mask.gather(-1, td[keys.ACTION].unsqueeze(-1)).all()  # the policy kept to the mask
    dead = td[keys.OBS][..., -UNIT].eq(0)  # own health (the last 10 features are the agent's own)
    assert dead.any() and mask[dead].eq(torch.nn.functional.one_hot(torch.tensor(STOP), N).bool()).all()
    nxt = td["next"]
    assert nxt["reward"].shape == (E, 60, 1) and nxt["battle_won"].shape == (E, 60, 1)
    agent_reward = nxt[keys.AGENT_REWARD]  # SMAX gives every ally the same team reward: mean is that reward
    assert agent_reward.eq(agent_reward[..., :1, :]).all()
    torch.testing.assert_close(nxt["reward"], agent_reward[..., 0, :])
    check_flags(nxt, 100)
    assert nxt["terminated"].any()  # random play loses battles within 60 steps


def test_truncation_at_own_limit():
    env = make_env({**CFG, "max_steps": 6}, seed=1)  # the limit is a runtime argument: no new compilation
    assert describe(env).max_steps == 6
    td = env.rollout(14, policy(lambda m: torch.full(m.shape[:-1], STOP)), break_when_any_done=False)
    nxt = td["next"]
    check_flags(nxt, 6)
    assert nxt["truncated"][:, [5, 11]].all() and nxt["done"].sum() == 2 * E and not nxt["terminated"].any()


def test_battle_won_matches_unit_health():
    env = make_env(CFG, seed=0)
    nxt = env.rollout(100, policy(focus_fire), break_when_any_done=False)["next"]
    health = nxt["state"][..., : 2 * A * UNIT].unflatten(-1, (2 * A, UNIT))[..., 0]  # allies then enemies
    won = health[..., A:].eq(0).all(-1) & health[..., :A].gt(0).any(-1)
    done, battle_won = nxt["done"].squeeze(-1), nxt["battle_won"].squeeze(-1)
    assert battle_won.eq(won & done).all() and not battle_won[~done].any()
    assert battle_won.any() and (done & ~battle_won).any()  # focus fire wins some battles and loses some
    assert nxt["episode_reward"][nxt["battle_won"]].ge(1.99).all()  # all enemy health (1) + the bonus (1)


def test_unavailable_action_acts_as_stop():
    tds = []
    for act in (STOP, 5):  # attack enemy 0: out of range at the start, so unavailable
        env = make_env(CFG, seed=2)
        td = env.reset()
        assert not td[keys.ACTION_MASK][..., 5].any()
        td[keys.ACTION] = torch.full((E, A), act)
        tds.append(env.step(td)["next"])
    assert torch.equal(tds[0]["state"], tds[1]["state"])


def test_partial_reset_resets_only_masked_envs():
    env = make_env(CFG, seed=3)
    first = env.reset()
    td = first.clone()
    for _ in range(3):
        td[keys.ACTION] = torch.full((E, A), EAST)
        td = env.step(td)["next"]
    which = torch.tensor([True, False, False, True])
    out = env.reset(td.clone().set("_reset", which.unsqueeze(-1)))  # as torchrl's rollout and collectors call it
    assert torch.equal(out["state"][~which], td["state"][~which])
    assert not torch.equal(out["state"][which], td["state"][which])
    assert out["step_count"].squeeze(-1).tolist() == [0, 3, 3, 0]
    assert env.base_env._state.state.step.tolist() == [0, 3, 3, 0]  # SMAX's own state: only 0 and 3 were reset


def test_seeding_is_reproducible():
    a = make_env(CFG, seed=5).reset()[keys.OBS]
    b = make_env(CFG, seed=5).reset()[keys.OBS]
    c = make_env(CFG, seed=6).reset()[keys.OBS]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # the copies get different keys


@pytest.mark.parametrize("cfg, message", [
    ({"task": "4m"}, "unknown SMAX map '4m'; e.g. 3m, 2s3z"),
    ({"map": "3m"}, "unknown key"),
    ({"attack_mode": "weakest"}, "attack_mode must be"),
    ({"enemy_shoots": "yes"}, "enemy_shoots must be true or false"),
])
def test_bad_input(cfg, message):
    with pytest.raises(ConfigError, match=message):
        make_env({**CFG, **cfg})


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jaxmarl", None)  # as if not installed
    with pytest.raises(ConfigError, match=r'pip install "marl-torchrl\[smax\]"'):
        make_env(CFG)


def test_tiny_qmix_run(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=qmix", "env=smax/3m", "env.num_envs=4", "replay.seq_len=10",
                    "collector.frames_per_batch=40", "total_frames=120", "replay.batch_size=4", "replay.warmup=4",
                    "train.updates_per_batch=2", "eval.episodes=4", "eval.interval_frames=80", "model.hidden_dim=16"])
    assert cfg.env.task == "3m" and cfg.env.family == "smax"
    metrics = run(cfg, tmp_path)
    assert "train/loss" in metrics and 0.0 <= metrics["eval/battle_won"] <= 1.0
