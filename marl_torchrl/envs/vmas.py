"""VMAS scenarios (family ``"vmas"``) with the standard face.

Config keys: ``family: vmas``; ``task`` (any VMAS scenario name: ``balance``, ``navigation``, ...);
``num_envs``; ``max_steps`` (time limit, reported as ``truncated``; VMAS's own limit would say
``terminated``, so VMAS itself runs with none); ``continuous_actions`` (default false: ``Categorical(n)``
actions); ``team_reward`` (``mean`` | ``sum`` of the per-agent rewards, default ``mean``);
``scenario_kwargs`` (dict for the scenario, e.g. ``{n_agents: 4}``; keys the scenario does not use
raise); ``name`` (ignored).

All agents form one group ``"agents"``. Scenarios with several teams or roles (e.g. ``simple_tag``) or
with agents of different observation/action sizes raise :class:`~marl_torchrl.registry.ConfigError`.
VMAS has no global state: root ``"state"`` is the agents' observations concatenated ``[E, A*F]``.

>>> from marl_torchrl.envs import make_env, describe
>>> env = make_env({"family": "vmas", "task": "balance", "max_steps": 5}, num_envs=2)
>>> info = describe(env)
>>> (info.n_agents, info.obs_dim, info.state_dim, info.n_actions)
(3, 16, 48, 9)
"""
from __future__ import annotations

import warnings
from typing import Mapping

from torchrl.envs import EnvBase

from marl_torchrl import keys
from marl_torchrl.config.envs import VmasConfig
from marl_torchrl.envs.face import standard_face
from marl_torchrl.registry import ENV_FAMILIES, ConfigError

# make_env arguments that must not come in through scenario_kwargs
_RESERVED = ("scenario", "num_envs", "device", "continuous_actions", "max_steps", "seed", "wrapper")


def known_scenarios() -> list[str]:
    """Names of every scenario VMAS ships (its own, MPE and debug ones).

    >>> "balance" in known_scenarios()
    True
    """
    import vmas

    return sorted(set(vmas.scenarios) | set(vmas.mpe_scenarios) | set(vmas.debug_scenarios))


def _one_group(task: str, agent_names: list[str]) -> None:
    """Raise unless VMAS's own grouping puts every agent in one team."""
    from torchrl.envs.libs.vmas import VmasWrapper

    groups = VmasWrapper._get_default_group_map(None, agent_names)
    if len(groups) > 1:
        raise ConfigError(
            f"VMAS scenario '{task}' has several agent groups ({', '.join(groups)}); "
            "only scenarios with one cooperative team are supported"
        )


@ENV_FAMILIES.register("vmas")
def make_vmas_env(cfg: VmasConfig, num_envs: int, device) -> EnvBase:
    """Build a VMAS scenario from its config (see the module docstring) with the standard face.

    >>> make_vmas_env(VmasConfig(task="balanse"), 1, "cpu")
    Traceback (most recent call last):
    ...
    marl_torchrl.registry.ConfigError: unknown VMAS scenario 'balanse' (see vmas.scenarios for the list)
    """
    import vmas

    from marl_torchrl.envs.vmas_wrapper import FastVmasWrapper

    task = cfg.task
    if task not in known_scenarios():
        raise ConfigError(f"unknown VMAS scenario {task!r} (see vmas.scenarios for the list)")
    continuous, kwargs = cfg.continuous_actions, dict(cfg.scenario_kwargs)
    clash = [k for k in kwargs if k in _RESERVED]
    if clash:
        raise ConfigError(f"scenario_kwargs may not set {', '.join(clash)}: use the env config's own keys")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = vmas.make_env(
            task, num_envs=num_envs, device=device, continuous_actions=continuous, max_steps=None,
            wrapper=None, **dict(kwargs),
        )
    for w in caught:
        if "passed but not used" in str(w.message):
            raise ConfigError(f"VMAS scenario '{task}' does not use scenario_kwargs {sorted(_unused(w, kwargs))}")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    names = [agent.name for agent in raw.agents]
    _one_group(task, names)
    env = FastVmasWrapper(raw, categorical_actions=True, group_map={keys.GROUP: names})
    if env.het_specs:
        raise ConfigError(f"VMAS scenario '{task}' has agents with different observation or action sizes")
    return standard_face(
        env,
        max_steps=cfg.max_steps,
        team_reward=cfg.team_reward,
        state_from_obs=True,
    )


def _unused(w: warnings.WarningMessage, kwargs: Mapping) -> list[str]:
    message = str(w.message)
    return [k for k in kwargs if repr(k) in message] or list(kwargs)


def shared_random_state() -> list:
    """VMAS draws for every env of a process from one random state of its own (the class attribute
    ``Environment.vmas_random_state``: torch, numpy and Python states, switched in around each reset and
    step), not from torch's global generator: a copy of it, for a process that keeps one stream per seed.

    >>> import torch
    >>> from marl_torchrl.envs import make_env
    >>> env = make_env({"family": "vmas", "task": "balance", "max_steps": 5}, num_envs=2, seed=0)
    >>> saved = shared_random_state()
    >>> first = env.reset()[("agents", "observation")]
    >>> set_shared_random_state(saved)
    >>> env.reset()[("agents", "observation")].equal(first)
    True
    """
    from vmas.simulator.environment import Environment

    return list(Environment.vmas_random_state)


def set_shared_random_state(state: list) -> None:
    """Put back a :func:`shared_random_state` (in place: VMAS's methods hold the list itself)."""
    from vmas.simulator.environment import Environment

    Environment.vmas_random_state[:] = state
