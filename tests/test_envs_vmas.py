"""VMAS family: face, time limit as truncation, team reward, config errors, rendering."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torchrl.data import Bounded, Categorical
from torchrl.envs.utils import check_env_specs

from marl_torchrl import keys
from marl_torchrl.config import compose_config
from marl_torchrl.envs import describe, make_env
from marl_torchrl.envs.render import RenderError, render_frames, save_video
from marl_torchrl.registry import ConfigError

BALANCE = {"family": "vmas", "task": "balance", "max_steps": 4, "scenario_kwargs": {"n_agents": 4}}


def balance(num_envs=2, **kw):
    return make_env({**BALANCE, **kw}, num_envs=num_envs, seed=0)


def test_balance_face_keys_shapes_dtypes():
    env = balance(3)
    check_env_specs(env)
    spec = env.full_action_spec[keys.ACTION]
    assert isinstance(spec, Categorical) and spec.space.n == 9 and spec.shape == (3, 4)
    td = env.reset()
    assert td[keys.OBS].shape == (3, 4, 16) and td[keys.OBS].dtype == torch.float32
    assert td[keys.STATE].shape == (3, 64) and td[keys.STATE].dtype == torch.float32
    torch.testing.assert_close(td[keys.STATE], td[keys.OBS].reshape(3, 64))
    td = env.rand_step(td)
    assert td[keys.ACTION].shape == (3, 4) and td[keys.ACTION].dtype == torch.int64
    nxt = td["next"]
    assert nxt[keys.REWARD].shape == (3, 1) and nxt[keys.REWARD].dtype == torch.float32
    assert nxt[keys.AGENT_REWARD].shape == (3, 4, 1)
    torch.testing.assert_close(nxt[keys.STATE], nxt[keys.OBS].reshape(3, 64))
    for k in (keys.DONE, keys.TERMINATED, keys.TRUNCATED, keys.IS_INIT, keys.EPISODE_REWARD):
        assert nxt[k].shape == (3, 1), k
    assert keys.ACTION_MASK not in td.keys(True)
    assert describe(env).n_agents == 4


def test_truncation_at_max_steps_and_episode_return():
    env = balance(2)
    td = env.rollout(10, break_when_any_done=False)
    assert td.batch_size == (2, 10)
    nxt = td["next"]
    at_limit = torch.tensor([False, False, False, True] * 2 + [False, False])
    assert torch.equal(nxt[keys.TRUNCATED].squeeze(-1), at_limit.expand(2, 10))
    assert torch.equal(nxt[keys.DONE].squeeze(-1), at_limit.expand(2, 10))
    assert not nxt[keys.TERMINATED].any()
    returns = nxt[keys.REWARD].squeeze(-1)[:, :4].sum(-1)
    torch.testing.assert_close(nxt[keys.EPISODE_REWARD][:, 3, 0], returns)
    # the second episode starts from zero
    torch.testing.assert_close(nxt[keys.EPISODE_REWARD][:, 4], nxt[keys.REWARD][:, 4])
    assert td[keys.IS_INIT][:, [0, 4, 8]].all()


@pytest.mark.parametrize("mode", ["mean", "sum"])
def test_team_reward_aggregation(mode):
    env = balance(2, team_reward=mode)
    nxt = env.rand_step(env.reset())["next"]
    agents = nxt[keys.AGENT_REWARD]
    want = agents.mean(-2) if mode == "mean" else agents.sum(-2)
    torch.testing.assert_close(nxt[keys.REWARD], want)


def test_no_time_limit_still_has_truncated():
    env = make_env({"family": "vmas", "task": "navigation"}, num_envs=2)
    check_env_specs(env)
    td = env.rollout(3)
    assert not td["next", keys.TRUNCATED].any() and describe(env).max_steps is None


def test_continuous_actions():
    env = make_env({"family": "vmas", "task": "navigation", "continuous_actions": True, "max_steps": 3}, num_envs=2)
    check_env_specs(env)
    spec = env.full_action_spec[keys.ACTION]
    assert isinstance(spec, Bounded) and spec.dtype == torch.float32 and spec.shape[-1] == 2
    td = env.rollout(3)
    assert td[keys.ACTION].shape == (2, 3, describe(env).n_agents, 2)


def test_seed_reproducible():
    a = balance(2).reset()[keys.OBS]
    b = balance(2).reset()[keys.OBS]
    torch.testing.assert_close(a, b)


def test_single_team_with_another_group_name_becomes_agents():
    env = make_env({"family": "vmas", "task": "football", "max_steps": 2,
                    "scenario_kwargs": {"n_blue_agents": 2, "ai_red_agents": True}}, num_envs=1)
    groups = set(env.full_observation_spec.keys()) & {"agents", "agent_blue"}
    assert groups == {keys.GROUP}
    assert describe(env).n_agents == 2


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"task": "balanse"}, "unknown VMAS scenario 'balanse'"),
        ({"task": "simple_tag"}, "several agent groups"),
        ({"task": "balance", "scenario_kwargs": {"n_agentz": 4}}, "does not use scenario_kwargs"),
        ({"task": "balance", "scenario_kwargs": {"num_envs": 4}}, "may not set num_envs"),
        ({"task": "balance", "scenario_kwargs": [1, 2]}, "mapping"),
        ({"task": "balance", "continuous_actions": "yes"}, "continuous_actions"),
        ({"task": "balance", "max_step": 10}, "unknown key"),
    ],
)
def test_bad_vmas_configs_raise_one_line(cfg, match):
    with pytest.raises(ConfigError, match=match) as err:
        make_env({"family": "vmas", **cfg})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["balance", "navigation", "transport", "wheel"])
def test_config_files(name):
    cfg = compose_config(f"env=vmas/{name}").env  # presets start from their schema through ``defaults:``
    assert cfg.family == "vmas" and cfg.task == name and not cfg.continuous_actions
    env = make_env(cfg, num_envs=2)
    check_env_specs(env)
    assert describe(env).max_steps == cfg.max_steps
    if name == "balance":
        assert cfg.num_envs == 32 and describe(env).n_agents == 4


def test_render_frames_and_gif(tmp_path):
    env = balance(1)
    frames = render_frames(env, None, max_steps=10)
    assert len(frames) == 5  # first frame + 4 steps, then truncated at max_steps
    assert all(f.dtype == np.uint8 and f.ndim == 3 and f.shape[-1] == 3 for f in frames)
    assert frames[0].std() > 0  # something was drawn
    small = [f[::10, ::10] for f in frames]
    path = save_video(small, str(tmp_path / "ep.gif"))
    assert Path(path).stat().st_size > 0
    with pytest.raises(RenderError, match="format"):
        save_video(small, str(tmp_path / "ep.avi"))


@pytest.mark.skipif(importlib.util.find_spec("imageio_ffmpeg") is not None, reason="ffmpeg backend installed")
def test_mp4_without_ffmpeg_says_what_to_install(tmp_path):
    with pytest.raises(RenderError, match="imageio-ffmpeg"):
        save_video([np.zeros((4, 4, 3), dtype=np.uint8)], str(tmp_path / "ep.mp4"))


def test_missing_opengl_gives_a_clear_error(monkeypatch):
    env = balance(1)

    def no_gl(*args, **kwargs):
        raise ImportError("Library \"GL\" not found.")

    monkeypatch.setattr(env.base_env._env, "render", no_gl)
    with pytest.raises(RenderError, match="apt-get install") as err:
        render_frames(env, None, 2)
    assert "\n" not in str(err.value)
