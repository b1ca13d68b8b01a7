"""Level-Based Foraging behind the env face: keys, shapes, masks, done/truncated, check_env_specs,
seeding, bad input, and a tiny QMIX run end to end."""
from __future__ import annotations

import pytest
import torch
from families import skip_module_if_family_missing
from torchrl.envs.utils import check_env_specs

from marl_torchrl import keys
from marl_torchrl.envs import describe, make_env
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

skip_module_if_family_missing("lbf")
CFG = {"family": "lbf", "task": "Foraging-8x8-2p-2f-coop-v3"}


def test_face_masks_and_truncation():
    env = make_env(CFG, num_envs=3, seed=0)
    info = describe(env)
    assert (info.n_agents, info.obs_dim, info.n_actions, info.state_dim, info.max_steps) == (2, 12, 6, 24, 50)
    assert info.has_action_mask
    check_env_specs(env)
    td = env.rollout(60, break_when_any_done=False)  # random actions among all 6: invalid ones are no-ops
    assert td[keys.OBS].shape == (3, 60, 2, 12) and td[keys.ACTION_MASK].dtype == torch.bool
    assert td[keys.ACTION_MASK].any(-1).all()  # every agent always has an available action (no-op)
    assert td["next", "reward"].shape == (3, 60, 1)
    done = td["next", "done"].squeeze(-1)
    # an episode ends by the limit (truncated, never terminated) or when the food is gone (terminated)
    assert (td["next", "truncated"] | td["next", "terminated"]).squeeze(-1).eq(done).all()
    assert not (td["next", "truncated"] & td["next", "terminated"]).any()
    assert done[:, :50].any(-1).all()  # nobody runs past LBF's 50-step limit


def test_mask_matches_lbf_valid_moves():
    env = make_env(CFG, num_envs=2, seed=3)
    td = env.reset()
    base = env.base_env
    for i, gym_env in enumerate(base.envs):
        u = gym_env.unwrapped
        for j, player in enumerate(u.players):
            valid = {a.value for a in u._valid_actions[player]}
            assert set(td[keys.ACTION_MASK][i, j].nonzero().flatten().tolist()) == valid


def test_a_returned_mask_is_not_changed_by_later_steps():
    """The mask an env returns is its own tensor, not a view of the env's buffer that the next step rewrites."""
    env = make_env(CFG, num_envs=2, seed=3)
    td = env.reset()
    mask = td[keys.ACTION_MASK].clone()
    for _ in range(5):
        env.rand_step(env.reset())
    assert torch.equal(td[keys.ACTION_MASK], mask)
    assert not torch.equal(env.reset()[keys.ACTION_MASK], mask)  # (the env's masks did change)


def test_seeding_is_reproducible():
    a = make_env(CFG, num_envs=2, seed=5).reset()[keys.OBS]
    b = make_env(CFG, num_envs=2, seed=5).reset()[keys.OBS]
    assert torch.equal(a, b)


@pytest.mark.parametrize("cfg, message", [
    ({"task": "Foraging-8x8-2p-2f-coop-v9"}, "unknown LBF id"),
    ({"grid": 8}, "unknown key"),
])
def test_bad_input(cfg, message):
    with pytest.raises(ConfigError, match=message):
        make_env({**CFG, **cfg})


def test_tiny_qmix_run(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=qmix", "env=lbf/Foraging-8x8-2p-2f-coop-v3", "env.num_envs=4", "replay.seq_len=10",
                    "collector.frames_per_batch=40", "total_frames=120", "replay.batch_size=4", "replay.warmup=4",
                    "train.updates_per_batch=2", "eval.episodes=2", "eval.interval_frames=80", "model.hidden_dim=16"])
    metrics = run(cfg, tmp_path)
    assert "eval/ep_reward" in metrics and "train/loss" in metrics


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "lbforaging", None)  # as if not installed
    with pytest.raises(ConfigError, match=r'pip install "marl-torchrl\[lbf\]"'):
        make_env(CFG)
