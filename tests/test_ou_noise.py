"""FACMAC's Ornstein-Uhlenbeck exploration (``algorithm.noise_type=ou``): the process has the stationary std
and the step-to-step correlation it is configured with, restarts at each episode, is off in evaluation,
anneals and is checkpointed, and a continuous FACMAC run collects with it through the env's primer; the
uniform random start (`algorithm.random_frames`) before either noise."""
from __future__ import annotations

import pytest
import torch
from actor_critic_helpers import TINY_VMAS, assert_checkpoint_evaluates_deterministically
from tensordict import TensorDict
from torchrl.envs.utils import ExplorationType, set_exploration_type

from marl_torchrl import keys
from marl_torchrl.modules.ou_noise import NOISE, OUNoise
from marl_torchrl.registry import ConfigError
from marl_torchrl.train import run

WIDE = (torch.full((2, 1), -1e6), torch.full((2, 1), 1e6))  # bounds that never clip


def _trajectory(noise, steps, envs=256):
    """The noise each step adds to a zero action, carried from step to step as a collector would."""
    td, out = TensorDict({keys.ACTION: torch.zeros(envs, 2, 1)}, [envs]), []
    for _ in range(steps):
        td = noise(td)
        out.append(td[keys.ACTION] / ((noise.high - noise.low) / 2))  # in half ranges
        td = TensorDict({keys.ACTION: torch.zeros(envs, 2, 1), NOISE: td["next", *NOISE]}, [envs])
    return torch.stack(out)  # [T, envs, 2, 1]


def test_stationary_std_and_correlation_time():
    torch.manual_seed(0)
    noise = OUNoise(*WIDE, sigma=(0.3, 0.3), theta=0.1, anneal_frames=10)
    x = _trajectory(noise, 200)[100:]  # past the warm-up from x = 0
    assert abs(x.std().item() - 0.3) < 0.015  # in half action ranges
    lag1 = (x[1:] * x[:-1]).mean() / x.var()
    assert abs(lag1.item() - 0.9) < 0.03  # 1 - theta: it keeps pushing the same way


def test_restarts_where_an_episode_starts_and_is_off_in_evaluation():
    noise = OUNoise(torch.full((2, 1), -1.0), torch.full((2, 1), 1.0), sigma=(0.5, 0.5), theta=1.0,
                    anneal_frames=10)
    carried = torch.full((3, 2, 1), 5.0)
    td = TensorDict({keys.ACTION: torch.zeros(3, 2, 1), NOISE: carried,
                     keys.IS_INIT: torch.tensor([[True], [False], [True]])}, [3])
    torch.manual_seed(0)
    theta_one = noise(td.clone())["next", *NOISE]  # theta = 1: nothing of the past remains either way
    noise.theta = 0.5
    torch.manual_seed(0)
    out = noise(td.clone())["next", *NOISE]
    eps = theta_one / (0.5 * 1.0)  # the same draws
    expected = torch.stack([torch.zeros(2, 1), carried[1] * 0.5, torch.zeros(2, 1)]) + eps * 0.5 * (0.75 ** 0.5)
    torch.testing.assert_close(out, expected)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        greedy = noise(td.clone())
    assert torch.equal(greedy[keys.ACTION], td[keys.ACTION]) and ("next", *NOISE) not in greedy.keys(True)


def test_anneals_and_checkpoints_its_std():
    noise = OUNoise(*WIDE, sigma=(0.4, 0.1), theta=0.15, anneal_frames=50)
    noise.step(25)
    assert float(noise.sigma) == pytest.approx(0.25)
    noise.step(100)
    assert float(noise.sigma) == pytest.approx(0.1)
    fresh = OUNoise(*WIDE, sigma=(0.4, 0.1), theta=0.15, anneal_frames=50)
    fresh.load_state_dict(noise.state_dict())
    assert float(fresh.sigma) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="theta must be in"):
        OUNoise(*WIDE, sigma=(0.4, 0.1), theta=0.0, anneal_frames=100)


def test_tiny_continuous_facmac_run_collects_with_ou_noise(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=facmac", "env.continuous_actions=true", "algorithm.noise_type=ou",
                    "algorithm.noise_sigma_start=0.3", "algorithm.noise_sigma_end=0.1", *TINY_VMAS])
    metrics = run(cfg, tmp_path)
    assert metrics["rollout/noise_sigma"] < 0.3  # annealed over the whole budget
    for name in ("train/loss_actor", "train/action_saturation", "eval/ep_reward"):
        assert name in metrics, name
    assert_checkpoint_evaluates_deterministically(tmp_path)


def test_bad_noise_type_is_refused(make_cfg, tmp_path):
    cfg = make_cfg(["algorithm=facmac", "env.continuous_actions=true", "algorithm.noise_type=pink", *TINY_VMAS])
    with pytest.raises(ConfigError, match="noise_type"):
        run(cfg, tmp_path)


def test_collector_carries_the_process_from_step_to_step():
    """What the policy wrote as the next noise is what it reads at the next step, within an episode; each
    episode starts from 0 (the primer at reset)."""
    from rollout_helpers import collect_balance

    from marl_torchrl.algorithms.facmac import build_facmac

    _, batches = collect_balance(build_facmac, {"name": "facmac", "noise_type": "ou", "noise_sigma_start": 0.3,
                                                "noise_sigma_end": 0.3}, {"hidden_dim": 16}, num_envs=4,
                                 max_steps=5, steps=7, n_batches=1, continuous=True)
    b = batches[0]  # [envs, steps]
    now, nxt, is_init = b[NOISE], b["next", *NOISE], b[keys.IS_INIT].squeeze(-1)
    assert now.abs().sum() > 0
    assert torch.equal(now[:, 1:][~is_init[:, 1:]], nxt[:, :-1][~is_init[:, 1:]])
    assert is_init[:, 1:].any() and (now[is_init] == 0).all()


def test_random_start_is_uniform_then_hands_over_to_the_noise():
    from marl_torchrl.modules.random_start import RandomStart

    low, high = torch.full((2, 1), -1.0), torch.full((2, 1), 3.0)
    start = RandomStart(OUNoise(low, high, sigma=(0.0, 0.0), theta=0.15, anneal_frames=100), low, high, frames=50)
    td = TensorDict({keys.ACTION: torch.zeros(4096, 2, 1)}, [4096])
    first = start(td.clone())[keys.ACTION]
    assert first.min() >= -1.0 and first.max() <= 3.0 and abs(first.mean().item() - 1.0) < 0.05
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        assert torch.equal(start(td.clone())[keys.ACTION], td[keys.ACTION])
    start.step(30)
    assert start.random
    start.step(30)
    assert not start.random and torch.equal(start(td.clone())[keys.ACTION], td[keys.ACTION])  # sigma 0: as is
    fresh = RandomStart(OUNoise(low, high, sigma=(0.0, 0.0), theta=0.15, anneal_frames=100), low, high, frames=50)
    fresh.load_state_dict(start.state_dict())
    assert not fresh.random


@pytest.mark.parametrize("noise_type", ["gaussian", "ou"])
def test_tiny_run_with_random_frames(make_cfg, tmp_path, noise_type):
    cfg = make_cfg(["algorithm=facmac", "env.continuous_actions=true", f"algorithm.noise_type={noise_type}",
                    "algorithm.random_frames=40", *TINY_VMAS])
    metrics = run(cfg, tmp_path)
    assert metrics["rollout/random_actions"] == 0.0  # 120 frames collected, past the 40
    assert_checkpoint_evaluates_deterministically(tmp_path)
