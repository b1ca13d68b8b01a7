"""The shared environment face: make_env dispatch, config checks, describe, standard transforms."""
import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict
from torchrl.envs import StepCounter

from marl_torchrl import keys
from marl_torchrl.envs import EnvSpecInfo, describe, make_env
from marl_torchrl.envs.transforms import AddTruncated, ObservationsAsState, TeamReward
from marl_torchrl.registry import ENV_FAMILIES, ConfigError

TWO_STEP = {"family": "matrix", "task": "two_step", "num_envs": 3}


def test_families_registered():
    assert {"vmas", "matrix"} <= set(ENV_FAMILIES.names())


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"family": "nope", "task": "x"}, "unknown env family 'nope'"),
        ({"task": "two_step"}, "needs a 'family'"),
        ({**TWO_STEP, "payof_2a": [[1, 1], [1, 1]]}, "unknown key"),
        ({**TWO_STEP, "team_reward": "max"}, "team_reward"),
        ({**TWO_STEP, "max_steps": 0}, "max_steps"),
        ({**TWO_STEP, "max_steps": "ten"}, "max_steps"),
        ({**TWO_STEP, "num_envs": 0}, "num_envs"),
        ({"family": "vmas", "task": "balance", "typo": 1}, "unknown key"),
        ({"family": "vmas"}, "needs a 'task'"),
    ],
)
def test_bad_configs_raise_one_line(cfg, match):
    with pytest.raises(ConfigError, match=match) as err:
        make_env(cfg)
    assert "\n" not in str(err.value)


def test_config_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        make_env(["matrix"])


def test_num_envs_argument_overrides_config_and_name_is_ignored():
    env = make_env({**TWO_STEP, "name": "anything at all"}, num_envs=5)
    assert env.batch_size == torch.Size([5])
    assert make_env(TWO_STEP).batch_size == torch.Size([3])
    assert make_env({"family": "matrix", "task": "two_step"}).batch_size == torch.Size([1])


def test_omegaconf_config_and_device():
    env = make_env(OmegaConf.create(TWO_STEP), device="cpu", seed=1)
    assert env.device == torch.device("cpu")
    assert env.reset()[keys.OBS].device == torch.device("cpu")


def test_describe_discrete():
    info = describe(make_env(TWO_STEP))
    assert isinstance(info, EnvSpecInfo)
    assert (info.n_agents, info.obs_dim, info.state_dim, info.n_actions) == (2, 3, 3, 2)
    assert not info.continuous and info.action_low is None and info.action_high is None
    assert not info.has_action_mask and info.max_steps == 2


def test_describe_continuous_vmas():
    env = make_env({"family": "vmas", "task": "balance", "continuous_actions": True, "max_steps": 7}, num_envs=2)
    info = describe(env)
    assert info.continuous and info.n_actions is None and info.max_steps == 7
    assert info.action_low.shape == info.action_high.shape == (info.n_agents, 2)
    assert (info.action_low < info.action_high).all()


def test_standard_transforms_present():
    env = make_env({**TWO_STEP, "max_steps": 5})
    td = env.reset()
    for key in (keys.IS_INIT, keys.STEP_COUNT, keys.EPISODE_REWARD, keys.TRUNCATED, keys.STATE):
        assert key in td.keys(), key
    assert td[keys.IS_INIT].all() and (td[keys.STEP_COUNT] == 0).all()
    assert any(isinstance(t, StepCounter) and t.max_steps == 5 for t in env.transform)


def test_episode_reward_resets_between_episodes():
    env = make_env(TWO_STEP, num_envs=2)
    td = env.rollout(6, break_when_any_done=False)
    ep = td["next", keys.EPISODE_REWARD]
    reward = td["next", keys.REWARD]
    # every episode is 2 steps: the running return restarts at steps 0, 2, 4
    torch.testing.assert_close(ep[:, 0::2], reward[:, 0::2])
    torch.testing.assert_close(ep[:, 1::2], reward[:, 0::2] + reward[:, 1::2])
    assert td[keys.IS_INIT][:, 0::2].all() and not td[keys.IS_INIT][:, 1::2].any()


def test_team_reward_transform_mean_and_sum():
    r = torch.tensor([[[1.0], [2.0], [6.0]]])
    td = TensorDict({keys.AGENT_REWARD: r}, batch_size=[1])
    assert TeamReward("mean")._call(td.clone())[keys.REWARD].item() == 3.0
    assert TeamReward("sum")._call(td.clone())[keys.REWARD].item() == 9.0
    with pytest.raises(ValueError):
        TeamReward("max")


def test_observations_as_state_and_add_truncated():
    obs = torch.randn(4, 3, 2)
    td = TensorDict({keys.OBS: obs, keys.DONE: torch.ones(4, 1, dtype=torch.bool)}, batch_size=[4])
    td = ObservationsAsState()._call(td)
    torch.testing.assert_close(td[keys.STATE], obs.reshape(4, 6))
    td = AddTruncated()._call(td)
    assert td[keys.TRUNCATED].shape == (4, 1) and not td[keys.TRUNCATED].any()
