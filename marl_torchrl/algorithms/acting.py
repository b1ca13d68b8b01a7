"""Acting policies shared by algorithms: greedy + epsilon for discrete outputs, + Gaussian noise for
continuous ones. Both act from the agent network alone (no mixer, no state) and turn exploration off
under ``ExplorationType.DETERMINISTIC`` (evaluation).

Exploration schedules are linear over ``anneal_fraction * total_frames`` collected frames, or over a
fixed number of frames (``anneal_frames``, epsilon only).

>>> from marl_torchrl.envs import EnvSpecInfo
>>> from marl_torchrl.modules.agents import SharedAgentNet
>>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=4, continuous=False,
...                    action_low=None, action_high=None, has_action_mask=False, max_steps=10)
>>> net = SharedAgentNet(3, 2, 4, rnn=False)
>>> policy, explore = epsilon_greedy_policy(net, info, "cpu", eps=(1.0, 0.05, 0.1), total_frames=1000)
>>> float(explore.eps)
1.0
>>> _, explore = epsilon_greedy_policy(net, info, "cpu", eps=(1.0, 0.05, 0.1), total_frames=10**6,
...                                    anneal_frames=500)
>>> explore.step(250); round(float(explore.eps), 3)
0.525
"""
from __future__ import annotations

import torch
from tensordict.nn import TensorDictModule, TensorDictSequential
from torchrl.data import Bounded, Categorical
from torchrl.modules import AdditiveGaussianModule, EGreedyModule, QValueModule

from marl_torchrl import keys
from marl_torchrl.modules.actors import TanhBounded
from marl_torchrl.modules.ou_noise import OUNoise
from marl_torchrl.modules.random_start import RandomStart
from marl_torchrl.modules.recurrence import AgentNetModule
from marl_torchrl.registry import ConfigError


def _anneal_steps(fraction: float, total_frames: int) -> int:
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"an exploration anneal fraction must be in (0, 1], got {fraction}")
    return max(1, int(fraction * total_frames))


def epsilon_greedy_policy(net, info, device, *, eps: tuple[float, float, float], total_frames: int,
                          anneal_frames: int | None = None):
    """Greedy actions over the network's outputs among available actions, epsilon-random otherwise.

    ``eps`` is ``(start, end, anneal_fraction)``; ``anneal_frames``, when given, replaces
    ``anneal_fraction * total_frames``. Returns ``(policy, exploration module)``; the network's outputs
    (Q-values or logits) are written to ``("agents", "action_value")``.
    """
    start, end, fraction = (float(x) for x in eps)
    if not 0.0 <= end <= start <= 1.0:
        raise ConfigError(f"need 0 <= eps_end <= eps_start <= 1, got eps_start={start}, eps_end={end}")
    mask_key = keys.ACTION_MASK if info.has_action_mask else None
    greedy = QValueModule(
        action_space="categorical",
        action_value_key=keys.ACTION_VALUE,
        action_mask_key=mask_key,
        out_keys=[keys.ACTION, keys.ACTION_VALUE, keys.CHOSEN_ACTION_VALUE],
    )
    explore = EGreedyModule(
        Categorical(info.n_actions, shape=(info.n_agents,), device=device),
        eps_init=start,
        eps_end=end,
        annealing_num_steps=int(anneal_frames) if anneal_frames else _anneal_steps(fraction, total_frames),
        action_key=keys.ACTION,
        action_mask_key=mask_key,
        device=device,
    )
    return TensorDictSequential(AgentNetModule(net), greedy, explore), explore


def action_bounds(info, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite ``[A, d]`` action bounds of a continuous env, or a ``ConfigError``."""
    if info.action_low is None or info.action_high is None:
        raise ConfigError("continuous actions need finite bounds, but the env's action spec has none")
    low = torch.as_tensor(info.action_low, dtype=torch.float32, device=device)
    high = torch.as_tensor(info.action_high, dtype=torch.float32, device=device)
    if not (torch.isfinite(low).all() and torch.isfinite(high).all() and (high > low).all()):
        raise ConfigError(
            f"continuous actions need finite bounds with high > low, got low={low.tolist()}, high={high.tolist()}"
        )
    return low, high


def action_space(info, device=None) -> tuple:
    """``(bound, action_dim, n_actions)``: a :class:`~marl_torchrl.modules.actors.TanhBounded` of the
    env's bounds, the action dimensions and None for continuous actions; ``(None, n, n)`` for ``n``
    discrete actions.

    >>> from marl_torchrl.envs import EnvSpecInfo
    >>> action_space(EnvSpecInfo(2, 3, 6, 4, False, None, None, False, 10))
    (None, 4, 4)
    """
    if not info.continuous:
        return None, info.n_actions, info.n_actions
    low, high = action_bounds(info, device)
    return TanhBounded(low, high).to(device), low.shape[-1], None


def gaussian_noise_policy(net, to_action, info, device, *, sigma: tuple[float, float, float], total_frames: int,
                          random_frames: int = 0):
    """Deterministic actions plus Gaussian noise, clipped to the action bounds.

    ``to_action`` maps the network's raw output to a bounded action (e.g.
    :class:`~marl_torchrl.modules.actors.TanhBounded`). ``sigma`` is ``(start, end, anneal_fraction)``,
    in units of half the action range. With ``random_frames`` the exploration module is a
    :class:`~marl_torchrl.modules.random_start.RandomStart` around the noise: uniform actions for those first
    frames. Returns ``(policy, exploration module)``.

    >>> from marl_torchrl.envs import EnvSpecInfo
    >>> from marl_torchrl.modules.actors import TanhBounded
    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=2, continuous=True,
    ...                    action_low=[[-1.0, -1.0]] * 2, action_high=[[1.0, 1.0]] * 2,
    ...                    has_action_mask=False, max_steps=10)
    >>> low, high = action_bounds(info)
    >>> policy, noise = gaussian_noise_policy(SharedAgentNet(3, 2, 2, rnn=False), TanhBounded(low, high),
    ...                                       info, "cpu", sigma=(0.1, 0.1, 1.0), total_frames=100)
    >>> from tensordict import TensorDict
    >>> td = policy(TensorDict({("agents", "observation"): torch.randn(5, 2, 3)}, [5]))
    >>> bool((td["agents", "action"].abs() <= 1).all())
    True
    """
    start, end, fraction = (float(x) for x in sigma)
    if not 0.0 <= end <= start:
        raise ConfigError(f"need 0 <= noise_sigma_end <= noise_sigma_start, got {start}, {end}")
    low, high = action_bounds(info, device)
    spec = Bounded(low=low, high=high, shape=low.shape, device=device)
    noise = AdditiveGaussianModule(
        spec,
        sigma_init=start,
        sigma_end=end,
        annealing_num_steps=_anneal_steps(fraction, total_frames),
        std=((high - low) / 2).tolist(),
        action_key=keys.ACTION,
        device=device,
    )
    return _noisy_policy(net, to_action, noise, low, high, random_frames)


def _noisy_policy(net, to_action, noise, low, high, random_frames: int):
    """``(agent net -> bounded action -> noise [in a RandomStart], the exploration module)``."""
    if random_frames:
        noise = RandomStart(noise, low, high, frames=random_frames)
    act = TensorDictModule(to_action, in_keys=[keys.ACTOR_OUTPUT], out_keys=[keys.ACTION])
    return TensorDictSequential(AgentNetModule(net, out_key=keys.ACTOR_OUTPUT), act, noise), noise


def ou_noise_policy(net, to_action, info, device, *, sigma: tuple[float, float, float], theta: float,
                    total_frames: int, random_frames: int = 0):
    """:func:`gaussian_noise_policy` with Ornstein-Uhlenbeck noise (:class:`~marl_torchrl.modules.ou_noise.OUNoise`)
    instead: ``sigma`` is its stationary std, ``theta`` its mean reversion per step. The env needs the noise
    module's ``primer()`` among its transforms; ``random_frames`` as there. Returns ``(policy, exploration module)``.

    >>> from marl_torchrl.envs import EnvSpecInfo
    >>> from marl_torchrl.modules.actors import TanhBounded
    >>> from marl_torchrl.modules.agents import SharedAgentNet
    >>> info = EnvSpecInfo(n_agents=2, obs_dim=3, state_dim=6, n_actions=2, continuous=True,
    ...                    action_low=[[-1.0, -1.0]] * 2, action_high=[[1.0, 1.0]] * 2,
    ...                    has_action_mask=False, max_steps=10)
    >>> low, high = action_bounds(info)
    >>> policy, noise = ou_noise_policy(SharedAgentNet(3, 2, 2, rnn=False), TanhBounded(low, high), info, "cpu",
    ...                                 sigma=(0.3, 0.1, 0.5), theta=0.15, total_frames=100)
    >>> noise.step(25); round(float(noise.sigma), 3)
    0.2
    """
    start, end, fraction = (float(x) for x in sigma)
    low, high = action_bounds(info, device)
    noise = OUNoise(low, high, sigma=(start, end), theta=theta,
                    anneal_frames=_anneal_steps(fraction, total_frames)).to(device)
    return _noisy_policy(net, to_action, noise, low, high, random_frames)

