"""Typed env configs: the keys every family shares, and one dataclass per family for its own.

``configs/env/<family>/<task>.yaml`` starts from its family's schema (``schema/env/<schema name>`` in
Hydra's ConfigStore). A new family registers its dataclass with :func:`register_env_schema`.

>>> cfg = env_config({"family": "vmas", "task": "balance", "scenario_kwargs": {"n_agents": 3}})
>>> type(cfg).__name__, cfg.num_envs, cfg.continuous_actions
('VmasConfig', 1, False)
>>> env_config({"family": "vmas", "task": "balance", "continuous": True})
Traceback (most recent call last):
...
marl_torchrl.registry.ConfigError: unknown key 'env.continuous' (an unknown option of env family 'vmas'); known: continuous_actions, family, max_steps, name, num_envs, scenario_kwargs, task, team_reward
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from omegaconf import MISSING

from marl_torchrl.config.fields import non_negative, one_of, opt, or_none, positive, validate
from marl_torchrl.registry import ConfigError

TEAM_REWARDS = ("mean", "sum")


@dataclass
class EnvConfig:
    """Keys every family accepts."""

    family: str = opt(MISSING, "env family (vmas, matrix, gridworld, lbf, pettingzoo, smax, ...)")
    task: str = opt(MISSING, "the family's task, scenario, map or id")
    name: str = opt("", "free text for run names")
    num_envs: int = opt(1, "parallel envs", positive)
    max_steps: Optional[int] = opt(None, "time limit (truncated, never terminated); null = the env's own",
                                   or_none(positive))

    def cross_check(self, prefix: str) -> None:
        own = ENV_SCHEMAS.get(self.family)
        if own is not None and not isinstance(self, own if isinstance(own, type) else tuple(own.values())):
            raise ConfigError(f"{prefix}.family={self.family!r} does not match this preset's family; "
                              f"pick env=<family>/<task> instead")


@dataclass
class VmasConfig(EnvConfig):
    family: str = opt("vmas", "env family")
    team_reward: str = opt("mean", "team reward from the agents' rewards", one_of(*TEAM_REWARDS))
    continuous_actions: bool = opt(False, "Bounded actions instead of Categorical ones")
    scenario_kwargs: Dict[str, Any] = opt({}, "keyword arguments of the VMAS scenario")


@dataclass
class MatrixOneStepConfig(EnvConfig):
    family: str = opt("matrix", "env family")
    task: str = opt("one_step", "one_step: one axis of payoff per agent", one_of("one_step"))
    payoff: Any = opt(MISSING, "nested list, one axis per agent (a hypercube)")
    n_agents: Optional[int] = opt(None, "optional: checked against the payoff's shape", or_none(positive))
    n_actions: Optional[int] = opt(None, "optional: checked against the payoff's shape", or_none(positive))


@dataclass
class MatrixTwoStepConfig(EnvConfig):
    family: str = opt("matrix", "env family")
    task: str = opt("two_step", "QMIX's two-step game", one_of("two_step"))
    payoff_2a: Any = opt([[7, 7], [7, 7]], "2x2 payoff of state 2A (agent 1's first action 0)")
    payoff_2b: Any = opt([[0, 1], [1, 8]], "2x2 payoff of state 2B (agent 1's first action 1)")


@dataclass
class GridWorldConfig(EnvConfig):
    family: str = opt("gridworld", "env family")
    task: str = opt("gridworld25", "the task (gridworld25)")
    max_steps: Optional[int] = opt(100, "time limit (truncated)", or_none(positive))
    size: int = opt(25, "grid side", positive)
    n_agents: int = opt(4, "agents", positive)
    n_food: int = opt(4, "food items", positive)
    agents_to_collect: int = opt(1, "agents that must collect an item in the same step", positive)
    food_reward: float = opt(1.0, "team reward per item collected")
    step_cost: float = opt(0.01, "team cost per step", non_negative)


@dataclass
class LBFConfig(EnvConfig):
    family: str = opt("lbf", "env family")
    team_reward: str = opt("sum", "team reward: LBF normalises the agents' rewards, a full clear pays 1 in total",
                           one_of(*TEAM_REWARDS))
    scale_observations: bool = opt(False, "observations (and so the state) mapped to [0, 1] with LBF's own "
                                          "observation bounds; false: raw grid coordinates and levels, as EPyMARL")


@dataclass
class PettingZooConfig(EnvConfig):
    family: str = opt("pettingzoo", "env family")
    team_reward: str = opt("sum", "team reward: the sum over agents, as EPyMARL and JaxMARL report MPE",
                           one_of(*TEAM_REWARDS))
    parallel: str = opt("serial", "serial: one process loops over copies; process: one worker per copy",
                        one_of("serial", "process"))
    kwargs: Dict[str, Any] = opt({}, "keyword arguments of the task's parallel_env")


@dataclass
class SMAXConfig(EnvConfig):
    family: str = opt("smax", "env family")
    team_reward: str = opt("mean", "team reward: SMAX pays every ally the same reward, so mean is the team's",
                           one_of(*TEAM_REWARDS))
    see_enemy_actions: bool = opt(True, "observations show the enemies' last actions")
    walls_cause_death: bool = opt(True, "a unit touching the map edge dies")
    won_battle_bonus: float = opt(1.0, "reward on the winning step")
    enemy_shoots: bool = opt(True, "the heuristic enemy attacks (false: it only moves)")
    attack_mode: str = opt("closest", "heuristic enemy target choice", one_of("closest", "random"))


#: family -> schema dataclass, or task -> schema where a family's tasks take different keys.
ENV_SCHEMAS: dict[str, Any] = {
    "vmas": VmasConfig,
    "matrix": {"one_step": MatrixOneStepConfig, "two_step": MatrixTwoStepConfig},
    "gridworld": GridWorldConfig,
    "lbf": LBFConfig,
    "pettingzoo": PettingZooConfig,
    "smax": SMAXConfig,
}


def register_env_schema(family: str, schema: type) -> type:
    """Make a new family's config dataclass known (also to Hydra, as ``schema/env/<family>``)."""
    if family in ENV_SCHEMAS:
        raise ConfigError(f"env family '{family}' has a config schema already")
    ENV_SCHEMAS[family] = schema
    from marl_torchrl.config.store import store_schema

    store_schema("env", family, schema)
    return schema


def env_schema(family: Any, task: Any = None) -> type:
    """The dataclass of a family (and task, for families whose tasks differ)."""
    if family not in ENV_SCHEMAS:
        raise ConfigError(f"unknown env family {family!r}; known: {', '.join(sorted(ENV_SCHEMAS))}")
    own = ENV_SCHEMAS[family]
    if isinstance(own, type):
        return own
    if task not in own:
        raise ConfigError(f"unknown {family} task {task!r}; known: {', '.join(own)}")
    return own[task]


def env_config(cfg: Any, prefix: str = "env") -> EnvConfig:
    """A checked env dataclass from a dataclass, an OmegaConf node or a plain mapping."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        validate(cfg, prefix)
        return cfg
    from marl_torchrl.config.coerce import structured_from

    if not isinstance(cfg, Mapping) and not hasattr(cfg, "keys"):
        raise ConfigError(f"{prefix} must be a mapping, got {type(cfg).__name__}")
    family = cfg.get("family")
    if family is None:
        raise ConfigError(f"{prefix} needs a 'family' (one of {', '.join(sorted(ENV_SCHEMAS))})")
    schema = env_schema(family, cfg.get("task"))
    obj = structured_from(schema, cfg, prefix, what=f"env family '{family}'")
    validate(obj, prefix)
    return obj
