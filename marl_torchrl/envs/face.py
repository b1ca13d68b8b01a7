"""The environment face: :func:`make_env` builds any family's env, :func:`describe` reads its shape.

Every env has one agent group ``"agents"``: ``("agents", "observation")`` ``[E, A, F]``, root ``"state"``
``[E, S]``, ``("agents", "action")`` (``Categorical(n)`` int64 ``[E, A]`` or ``Bounded`` float32
``[E, A, d]``), ``("agents", "action_mask")`` ``[E, A, n]`` where the env has masks; ``("next", "reward")``
``[E, 1]`` is the team reward; root ``done``/``terminated``/``truncated`` ``[E, 1]`` (a time limit is
``truncated``). :func:`standard_face` adds the transforms every family shares: ``InitTracker``
(``"is_init"``), ``StepCounter(max_steps)`` (``"step_count"``; sets ``truncated`` at ``max_steps``) and
``RewardSum`` (``"episode_reward"``, the running team return).

Each family's config is a dataclass of :mod:`marl_torchrl.config.envs` (the keys every family shares are
:class:`~marl_torchrl.config.envs.EnvConfig`'s); unknown keys and bad values raise a one-line
:class:`~marl_torchrl.registry.ConfigError` before the env is built.

>>> env = make_env({"family": "matrix", "task": "one_step", "payoff": [[1, 0], [0, 1]]}, num_envs=2)
>>> info = describe(env)
>>> (info.n_agents, info.n_actions, info.obs_dim, info.state_dim, info.continuous)
(2, 2, 1, 1, False)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch
from torchrl.data import Categorical, OneHot
from torchrl.envs import Compose, EnvBase, InitTracker, RewardSum, StepCounter, TransformedEnv

from marl_torchrl import keys
from marl_torchrl.envs.transforms import AddTruncated, ObservationsAsState, TeamReward
from marl_torchrl.config.envs import EnvConfig, env_config
from marl_torchrl.registry import ENV_FAMILIES, ConfigError

@dataclass
class EnvSpecInfo:
    """What a policy, a mixer and a replay buffer need to know about an env.

    ``episode_metrics`` is the family's hook for its own episode metrics (see :func:`episode_metric_keys`).

    ``n_actions`` is None for continuous actions; ``action_low``/``action_high`` are ``[A, d]`` tensors
    for continuous actions, else None; ``max_steps`` is the longest an episode can run (the time limit,
    or a fixed-length game's own length), None when unbounded.

    >>> EnvSpecInfo(2, 3, 6, 5, False, None, None, False, 10).n_agents
    2
    """

    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: Optional[int]
    continuous: bool
    action_low: Optional[torch.Tensor]
    action_high: Optional[torch.Tensor]
    has_action_mask: bool
    max_steps: Optional[int]
    episode_metrics: dict = field(default_factory=dict)


def standard_face(
    env: EnvBase,
    *,
    max_steps: Optional[int] = None,
    team_reward: Optional[str] = None,
    state_from_obs: bool = False,
) -> TransformedEnv:
    """Wrap ``env`` in the transforms every family shares.

    Args:
        max_steps: time limit (``truncated``, never ``terminated``), or None for none.
        team_reward: ``"mean"``/``"sum"`` to build the team reward from ``("agents", "reward")``; None
            when the env already writes a root ``"reward"``.
        state_from_obs: build root ``"state"`` from the concatenated observations.

    >>> from marl_torchrl.envs.matrix import OneStepGame
    >>> env = standard_face(OneStepGame(torch.eye(2), num_envs=3))
    >>> sorted(k for k in env.reset().keys() if isinstance(k, str))
    ['agents', 'done', 'episode_reward', 'is_init', 'state', 'step_count', 'terminated', 'truncated']
    """
    transforms = []
    if team_reward is not None:
        transforms.append(TeamReward(mode=team_reward))
    if state_from_obs:
        transforms.append(ObservationsAsState())
    transforms.append(InitTracker())
    transforms.append(StepCounter(max_steps=max_steps))
    if max_steps is None and keys.TRUNCATED not in env.full_done_spec.keys():
        transforms.append(AddTruncated())
    transforms.append(RewardSum(in_keys=[keys.REWARD], out_keys=[keys.EPISODE_REWARD]))
    return TransformedEnv(env, Compose(*transforms))


def make_env(cfg: EnvConfig | Mapping, num_envs: Optional[int] = None, device="cpu", seed: Optional[int] = None,
             last_action: bool = False) -> TransformedEnv:
    """Build the env a config describes, with the standard face, ``num_envs`` parallel copies on ``device``.

    ``cfg`` is the family's config dataclass, or a mapping of its keys (checked into one).

    ``num_envs`` overrides ``cfg["num_envs"]`` when given; ``seed`` seeds the env when given;
    ``last_action`` appends each agent's previous action to its observation
    (:mod:`marl_torchrl.envs.last_action`).

    >>> env = make_env({"family": "matrix", "task": "two_step", "num_envs": 4}, seed=0)
    >>> env.batch_size, env.reset()["state"][0].tolist()
    (torch.Size([4]), [1.0, 0.0, 0.0])
    >>> make_env({"family": "nope", "task": "x"})
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown env family 'nope'; known: gridworld, lbf, matrix, pettingzoo, smax, vmas
    """
    cfg = env_config(cfg)
    builder = ENV_FAMILIES.get(cfg.family)
    n = num_envs if num_envs is not None else cfg.num_envs
    if not _is_positive_int(n):
        raise ConfigError(f"num_envs must be a positive integer, got {n!r}")
    env = builder(cfg, num_envs=n, device=torch.device(device))
    if seed is not None:
        env.set_seed(int(seed))
    if last_action:
        from marl_torchrl.envs.last_action import add_last_action

        env = add_last_action(env)
    return env


def _is_positive_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def describe(env: EnvBase) -> EnvSpecInfo:
    """Read agents, sizes and action space off an env with the standard face.

    >>> info = describe(make_env({"family": "matrix", "task": "two_step"}))
    >>> (info.n_agents, info.obs_dim, info.state_dim, info.n_actions, info.max_steps)
    (2, 3, 3, 2, 2)
    """
    obs_spec = env.full_observation_spec
    obs = obs_spec[keys.OBS]
    action = env.full_action_spec[keys.ACTION]
    nb = len(env.batch_size)
    n_agents = obs.shape[nb]
    if isinstance(action, (Categorical, OneHot)):
        n_actions, continuous, low, high = int(action.space.n), False, None, None
    else:
        index = (0,) * nb
        n_actions, continuous = None, True
        low, high = action.space.low[index].clone(), action.space.high[index].clone()
    return EnvSpecInfo(
        n_agents=int(n_agents),
        obs_dim=int(obs.shape[-1]),
        state_dim=int(obs_spec[keys.STATE].shape[-1]),
        n_actions=n_actions,
        continuous=continuous,
        action_low=low,
        action_high=high,
        has_action_mask=keys.ACTION_MASK in obs_spec.keys(True),
        max_steps=_max_steps(env),
        episode_metrics=episode_metric_keys(env),
    )


def episode_metric_keys(env: EnvBase) -> dict[str, Any]:
    """The family's hook for its own episode metrics: ``{name: key}`` of flags or values the env writes
    on an episode's last step (SMAX: ``{"battle_won": "battle_won"}``), read from the base env class's
    ``episode_metric_keys`` attribute (the class's: batched envs forward unknown instance attributes to
    their workers). The loop logs them as ``rollout/<name>``, evaluation as ``eval/<name>``.

    >>> episode_metric_keys(make_env({"family": "matrix", "task": "two_step"}))
    {}
    """
    base = env.base_env if isinstance(env, TransformedEnv) else env
    return dict(getattr(type(base), "episode_metric_keys", None) or {})


def _max_steps(env: EnvBase) -> Optional[int]:
    limits = []
    if isinstance(env, TransformedEnv):
        transforms = env.transform if isinstance(env.transform, Compose) else [env.transform]
        limits += [t.max_steps for t in transforms if isinstance(t, StepCounter) and t.max_steps]
    own = getattr(env.base_env if isinstance(env, TransformedEnv) else env, "episode_limit", None)
    if own is not None:
        limits.append(own)
    return int(min(limits)) if limits else None
