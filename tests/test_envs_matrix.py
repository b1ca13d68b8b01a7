"""Matrix games: face, exact payoffs, termination, bad payoffs."""

import pytest
import torch
from torchrl.envs.utils import check_env_specs, step_mdp
from torchrl.data import Categorical

from marl_torchrl import keys
from marl_torchrl.config import compose_config
from marl_torchrl.envs import describe, make_env
from marl_torchrl.envs.render import RenderError, render_frames
from marl_torchrl.registry import ConfigError



def preset(name: str):
    """A preset as the command line composes it (presets start from their schema through ``defaults:``)."""
    return compose_config(f"env=matrix/{name}").env
P2A = [[7.0, 7.0], [7.0, 7.0]]
P2B = [[0.0, 1.0], [1.0, 8.0]]


def two_step(num_envs=8, **kw):
    return make_env({"family": "matrix", "task": "two_step", **kw}, num_envs=num_envs)


def test_two_step_face():
    env = two_step(4)
    check_env_specs(env)
    td = env.reset()
    assert td[keys.OBS].shape == (4, 2, 3) and td[keys.OBS].dtype == torch.float32
    assert td[keys.STATE].shape == (4, 3) and td[keys.STATE].dtype == torch.float32
    assert (td[keys.STATE] == torch.tensor([1.0, 0.0, 0.0])).all()
    spec = env.full_action_spec[keys.ACTION]
    assert isinstance(spec, Categorical) and spec.space.n == 2 and spec.shape == (4, 2)
    assert spec.dtype == torch.int64
    for k in (keys.DONE, keys.TERMINATED, keys.TRUNCATED):
        assert td[k].shape == (4, 1) and td[k].dtype == torch.bool
    assert keys.ACTION_MASK not in td.keys(True)


@pytest.mark.parametrize("cfg", [{}, {"payoff_2a": [[1, 2], [3, 4]], "payoff_2b": [[5, 6], [7, 8]]}])
def test_two_step_payoffs_exact_for_every_joint_action(cfg):
    p2a = torch.tensor(cfg.get("payoff_2a", P2A), dtype=torch.float32)
    p2b = torch.tensor(cfg.get("payoff_2b", P2B), dtype=torch.float32)
    env = two_step(8, **cfg)
    # env i: first actions pick the branch (agent 1's action), second actions are all 4 pairs
    first = torch.tensor([[b, 1 - b] for b in (0, 0, 0, 0, 1, 1, 1, 1)])
    second = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]] * 2)
    td = env.reset()
    td[keys.ACTION] = first
    td = env.step(td)
    nxt = td["next"]
    assert (nxt[keys.REWARD] == 0).all() and not nxt[keys.DONE].any()
    expected_state = torch.tensor([[0.0, 1.0, 0.0]] * 4 + [[0.0, 0.0, 1.0]] * 4)
    assert torch.equal(nxt[keys.STATE], expected_state)
    assert torch.equal(nxt[keys.OBS], expected_state.unsqueeze(1).expand(8, 2, 3))
    td = step_mdp(td)
    td[keys.ACTION] = second
    nxt = env.step(td)["next"]
    want = torch.stack([p2a[a0, a1] for a0, a1 in second[:4]] + [p2b[a0, a1] for a0, a1 in second[4:]])
    torch.testing.assert_close(nxt[keys.REWARD].squeeze(-1), want)
    assert nxt[keys.TERMINATED].all() and nxt[keys.DONE].all() and not nxt[keys.TRUNCATED].any()
    torch.testing.assert_close(nxt[keys.EPISODE_REWARD].squeeze(-1), want)


def test_two_step_rollout_with_auto_reset():
    env = two_step(3)
    td = env.rollout(6, break_when_any_done=False)
    assert td.batch_size == (3, 6)
    assert torch.equal(td["next", keys.DONE].squeeze(-1), torch.tensor([[False, True] * 3] * 3))
    assert (td[keys.STEP_COUNT][:, 0::2] == 0).all()


def test_one_step_three_players():
    payoff = torch.zeros(2, 2, 2)
    payoff[1, 1, 1], payoff[0, 1, 0], payoff[1, 0, 0] = 10.0, 3.0, -1.0
    env = make_env({"family": "matrix", "task": "one_step", "payoff": payoff.tolist()}, num_envs=4)
    check_env_specs(env)
    info = describe(env)
    assert (info.n_agents, info.n_actions, info.obs_dim, info.state_dim, info.max_steps) == (3, 2, 1, 1, 1)
    td = env.reset()
    assert (td[keys.OBS] == 1).all() and td[keys.OBS].shape == (4, 3, 1) and td[keys.STATE].shape == (4, 1)
    actions = torch.tensor([[1, 1, 1], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    td[keys.ACTION] = actions
    nxt = env.step(td)["next"]
    torch.testing.assert_close(nxt[keys.REWARD].squeeze(-1), torch.tensor([10.0, 3.0, -1.0, 0.0]))
    assert nxt[keys.TERMINATED].all() and not nxt[keys.TRUNCATED].any()
    assert env.rollout(3, break_when_any_done=False)["next", keys.DONE].all()


def test_config_files():
    nonmono = make_env(preset("nonmonotonic"), num_envs=2)
    assert describe(nonmono).n_actions == 3
    td = nonmono.reset()
    td[keys.ACTION] = torch.tensor([[0, 0], [0, 1]])
    assert nonmono.step(td)["next", keys.REWARD].flatten().tolist() == [8.0, -12.0]
    for name in ("one_step", "two_step"):
        cfg = preset(name)
        assert cfg.family == "matrix" and cfg.task in ("one_step", "two_step")
        check_env_specs(make_env(cfg, num_envs=2))


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"task": "one_step", "payoff": [[1, 0], [0]]}, "ragged"),
        ({"task": "one_step", "payoff": [1, 0]}, ">= 2 dims"),
        ({"task": "one_step", "payoff": 3}, ">= 2 dims"),
        ({"task": "one_step", "payoff": [[1, 0, 0], [0, 1, 0]]}, "hypercube"),
        ({"task": "one_step", "payoff": [[1, "a"], [0, 1]]}, "not a number"),
        ({"task": "one_step", "payoff": [[1, None], [0, 1]]}, "not a number"),
        ({"task": "one_step", "payoff": [[1, True], [0, 1]]}, "not a number"),
        ({"task": "one_step", "payoff": [[1, float("nan")], [0, 1]]}, "not finite"),
        ({"task": "one_step", "payoff": []}, "empty"),
        ({"task": "one_step"}, "needs a 'payoff'"),
        ({"task": "one_step", "payoff": [[1, 0], [0, 1]], "n_agents": 3}, "n_agents"),
        ({"task": "one_step", "payoff": [[1, 0], [0, 1]], "n_actions": 3}, "n_actions"),
        ({"task": "one_step", "payoff": [[1, 0], [0, 1]], "payoff_2a": [[1, 1], [1, 1]]}, "unknown key"),
        ({"task": "two_step", "payoff_2a": [[1, 2, 3], [4, 5, 6]]}, "2x2"),
        ({"task": "two_step", "payoff_2b": [[[1, 2], [3, 4]], [[1, 2], [3, 4]]]}, "2x2"),
        ({"task": "two_step", "payoff_2b": [[1, 2], [3]]}, "ragged"),
        ({"task": "two_step", "payoff": [[1, 0], [0, 1]]}, "unknown key"),
        ({"task": "three_step"}, "unknown matrix task"),
    ],
)
def test_bad_payoffs_raise_one_line(extra, match):
    with pytest.raises(ConfigError, match=match) as err:
        make_env({"family": "matrix", **extra})
    assert "\n" not in str(err.value)


def test_agreeing_optional_shape_keys_are_fine():
    env = make_env({"family": "matrix", "task": "one_step", "payoff": [[1, 0], [0, 1]], "n_agents": 2, "n_actions": 2})
    assert describe(env).n_agents == 2


def test_matrix_env_cannot_render():
    with pytest.raises(RenderError, match="only VMAS"):
        render_frames(two_step(1), None, 3)
