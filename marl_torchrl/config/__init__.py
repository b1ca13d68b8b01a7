"""Typed configuration, the one source of defaults: dataclasses registered in Hydra's ConfigStore.

Nothing in this package imports torch, torchrl, vmas or jax, so a bad config is refused (one
``error:`` line naming the key) before any heavy import. Python users get the command line's numbers
from :func:`compose_config` or by building the dataclasses themselves.

>>> cfg = compose_config("algorithm=qmix", "env=matrix/one_step", "model.type=mlp")
>>> cfg.algorithm.lr, cfg.model.type, cfg.env.payoff
(0.0005, 'mlp', [[1, 0], [0, 1]])
"""
from marl_torchrl.config.algorithms import (
    ALGORITHM_SCHEMAS, AlgorithmConfig, DOPConfig, FACMACConfig, ValueDecompositionConfig, WeightedQMIXConfig,
    register_algorithm_schema,
)
from marl_torchrl.config.pqn import PQNConfig  # registers the "pqn" schema
from marl_torchrl.config.envs import ENV_SCHEMAS, EnvConfig, env_config, register_env_schema
from marl_torchrl.config.fields import opt, validate
from marl_torchrl.config.run import (
    CheckpointConfig, CollectorConfig, EvalConfig, ModelConfig, ReplayConfig, RunConfig, TrainConfig, WandbConfig,
)
from marl_torchrl.config.coerce import as_config, run_config_from_dict
from marl_torchrl.config.store import (
    CONFIG_DIR, check_group_choices, compose_config, compose_dict, register_schemas, schema_name, to_run_config,
)

__all__ = [
    "ALGORITHM_SCHEMAS", "AlgorithmConfig", "as_config", "check_group_choices", "CheckpointConfig",
    "CollectorConfig", "compose_config", "compose_dict", "CONFIG_DIR", "DOPConfig", "env_config", "ENV_SCHEMAS",
    "EnvConfig", "EvalConfig", "FACMACConfig", "ModelConfig", "opt", "PQNConfig", "register_algorithm_schema",
    "register_env_schema", "ReplayConfig", "run_config_from_dict", "RunConfig", "schema_name", "to_run_config",
    "TrainConfig", "validate", "ValueDecompositionConfig", "WandbConfig", "WeightedQMIXConfig",
]

register_schemas()  # Hydra's compose (ours, a test's or a benchmark's) finds every schema once this is imported
